# The Ruby web app's call to the `price` lambda, as it is written against the aws-sdk-lambda gem.
# In development it points at the tariffsim dev server (`npm start`); in production the endpoint
# option is left out and the same call goes to AWS Lambda. Environments are aliases:
# "tariffsim-price:PROD" in production, ":DEV" or none in development.
#
#   TARIFFSIM_ENDPOINT=http://127.0.0.1:3000 ruby examples/ruby/price_client.rb
#
# (The aws-sdk-lambda gem is not installable on the CI machine; CI makes the same signed HTTP call
# with Debian's ruby-aws-sigv4 in invoke_with_sigv4.rb.)
require "json"
require "aws-sdk-lambda"

client_options = { region: "eu-west-1", http_read_timeout: 300 }
client_options[:endpoint] = ENV["TARIFFSIM_ENDPOINT"] if ENV["TARIFFSIM_ENDPOINT"]
lambda_client = Aws::Lambda::Client.new(**client_options)

request = {
  market: "sample",
  profile: { region: "C", fuel: "dual_fuel", payment_method: "direct_debit", elec_kwh: 2700, gas_kwh: 11_500 },
  page_size: 10,
}
response = lambda_client.invoke(
  function_name: ENV.fetch("TARIFFSIM_FUNCTION", "tariffsim-price"),
  payload: JSON.generate(request),
  invocation_type: "RequestResponse",
)
body = JSON.parse(response.payload.read)
raise "#{body['errorType']}: #{body['errorMessage']}" if response.function_error

body["results"].first["rows"].each do |row|
  puts format("%2d  %-20s %-32s £%8.2f", row["rank"], row["supplier"], row["name"], row["annual_cost_gbp"])
end
