# The same call as price_client.rb, made the way aws-sdk-lambda makes it: an HTTP POST to the Lambda
# Invoke API (POST /2015-03-31/functions/<name>/invocations), signed with SigV4 by the aws-sigv4 gem
# (Debian's ruby-aws-sigv4). CI runs this against the dev server; the server accepts the signature
# without checking it.
#
#   ruby examples/ruby/invoke_with_sigv4.rb http://127.0.0.1:3000 [function-name]
require "json"
require "net/http"
require "uri"
require "aws-sigv4"

endpoint = ARGV.fetch(0) { abort "usage: ruby invoke_with_sigv4.rb ENDPOINT [FUNCTION]" }
function = ARGV.fetch(1, "tariffsim-price")
uri = URI.join(endpoint, "/2015-03-31/functions/#{URI.encode_www_form_component(function)}/invocations")
payload = JSON.generate(
  market: "sample",
  profile: { region: "C", fuel: "dual_fuel", payment_method: "direct_debit", elec_kwh: 2700, gas_kwh: 11_500 },
  page_size: 10,
)

signer = Aws::Sigv4::Signer.new(
  service: "lambda",
  region: "eu-west-1",
  access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID", "testing"),
  secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY", "testing"),
)
headers = { "content-type" => "application/json", "x-amz-invocation-type" => "RequestResponse" }
signature = signer.sign_request(http_method: "POST", url: uri.to_s, headers: headers, body: payload)

http = Net::HTTP.new(uri.host, uri.port)
http.read_timeout = 300
request = Net::HTTP::Post.new(uri)
headers.merge(signature.headers).each { |k, v| request[k] = v }
request.body = payload
response = http.request(request)

body = JSON.parse(response.body)
if response["x-amz-function-error"]
  warn "#{body['errorType']}: #{body['errorMessage']}"
  exit 1
end
puts JSON.generate(body.merge("status" => response.code.to_i))
