# The Ruby web app's side of a big run: start it, follow it on Redis, read its result.
#
#   ruby examples/ruby/run_client.rb [--endpoint URL] [--redis URL] [--request-id ID]
#                                    [--function NAME] [--timeout SECONDS] SPEC
#
# 1. Subscribes to the run's topics, tariffsim:*:<request-id>, with the redis gem (Debian's
#    ruby-redis), then starts the run: run-simulation invoked asynchronously (InvocationType Event)
#    through the Lambda Invoke API, SigV4-signed with the aws-sigv4 gem as aws-sdk-lambda would.
# 2. Draws a progress bar from the chunk-done messages (on standard error).
# 3. Reads the run's stored state as well, once subscribed and whenever Redis has been quiet or is
#    unreachable: pub/sub drops what nobody hears, so a client that subscribes late (the run is
#    further on, or over) or loses Redis for a while still sees where the run stands.
# 4. When the run is done, prints its headline from the run's summary: each hypothetical tariff's
#    impressions, page-1 share and expected clicks. On run-failed (or a cancellation) it says why
#    and exits with status 1.
#
# SPEC is a run spec JSON file, sent inline (its market, scenario and visits are paths under the
# server's data folder, e.g. "sample/market.json"), or a spec file path under the server's data
# folder ("sample/run.json"). The request id is the run id (default: a new one). The message
# formats are schemas/messages/*.schema.json; the topics and the stored state, docs/pipeline.md.
#
# The run's state and summary come from the dev server (GET /api/runs/<id>, GET
# /api/runs/<id>/summary; docs/server.md). Against AWS the endpoint option goes, and the same
# state is read from the run's storage (state_url: runs/<id>/result.json and summary.json).
#
# Exit status: 0 done, 1 failed, cancelled, not started or timed out, 2 bad arguments.
require "bigdecimal"
require "json"
require "net/http"
require "optparse"
require "securerandom"
require "uri"
require "aws-sigv4"
require "redis"

options = {
  endpoint: ENV.fetch("TARIFFSIM_ENDPOINT", "http://127.0.0.1:3000"),
  redis: ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379"),
  function: "tariffsim-run-simulation",
  request_id: nil,
  timeout: 3600,
  start_timeout: 30,
}
parser = OptionParser.new do |o|
  o.banner = "usage: ruby run_client.rb [options] SPEC (a run spec JSON file, or a spec path on the server)"
  o.on("--endpoint URL", "the Invoke API and run state (default $TARIFFSIM_ENDPOINT or http://127.0.0.1:3000)") { |v| options[:endpoint] = v }
  o.on("--redis URL", "the Redis the lambdas publish on (default $REDIS_URL)") { |v| options[:redis] = v }
  o.on("--request-id ID", "the run id (default: a new one)") { |v| options[:request_id] = v }
  o.on("--function NAME", "run-simulation's function name or ARN, with its alias (default tariffsim-run-simulation)") { |v| options[:function] = v }
  o.on("--timeout SECONDS", Integer, "give up after this long (default 3600)") { |v| options[:timeout] = v }
  o.on("--start-timeout SECONDS", Integer, "give up when the run has not started after this long (default 30)") { |v| options[:start_timeout] = v }
end
begin
  parser.parse!
  raise OptionParser::MissingArgument, "SPEC" if ARGV.length != 1
rescue OptionParser::ParseError => e
  warn "run_client: #{e.message}"
  warn parser.banner
  exit 2
end
spec_arg = ARGV.first
spec = File.file?(spec_arg) ? JSON.parse(File.read(spec_arg)) : spec_arg
request_id = options[:request_id] || "web-#{SecureRandom.hex(6)}"
endpoint = URI(options[:endpoint])

# --- the dev server: Invoke API (signed) and the run's stored state ---------------------------------

def http_for(uri)
  http = Net::HTTP.new(uri.host, uri.port)
  http.use_ssl = uri.scheme == "https"
  http.open_timeout = 5
  http.read_timeout = 30
  http
end

# Starts the run: POST /2015-03-31/functions/<name>/invocations, InvocationType Event (202 at once).
def start_run(endpoint, function, request_id, spec)
  uri = URI.join(endpoint, "/2015-03-31/functions/#{URI.encode_www_form_component(function)}/invocations")
  payload = JSON.generate("request-id" => request_id, "spec" => spec)
  signer = Aws::Sigv4::Signer.new(
    service: "lambda",
    region: ENV.fetch("AWS_REGION", "eu-west-2"),
    access_key_id: ENV.fetch("AWS_ACCESS_KEY_ID", "testing"),
    secret_access_key: ENV.fetch("AWS_SECRET_ACCESS_KEY", "testing"),
  )
  headers = { "content-type" => "application/json", "x-amz-invocation-type" => "Event" }
  signature = signer.sign_request(http_method: "POST", url: uri.to_s, headers: headers, body: payload)
  request = Net::HTTP::Post.new(uri)
  headers.merge(signature.headers).each { |k, v| request[k] = v }
  request.body = payload
  begin
    response = http_for(uri).request(request)
  rescue SystemCallError, IOError, Net::OpenTimeout, Net::ReadTimeout => e
    abort "run_client: cannot reach the Invoke API at #{uri}: #{e.message}"
  end
  return if response.code == "202"

  body = JSON.parse(response.body) rescue { "errorMessage" => response.body }
  type = body["errorType"] || body["Type"] || response["x-amzn-errortype"] || "HTTP #{response.code}"
  message = body["errorMessage"] || body["message"] || body["Message"]
  abort "run_client: run-simulation refused the run: #{type}: #{message}"
end

# GET a JSON document of the dev server; nil when it answers 404.
def get_json(endpoint, path)
  uri = URI.join(endpoint, path)
  response = http_for(uri).request(Net::HTTP::Get.new(uri))
  return nil if response.code == "404"
  raise "GET #{uri}: HTTP #{response.code} #{response.body[0, 200]}" unless response.code == "200"

  JSON.parse(response.body)
end

def run_state(endpoint, request_id)
  get_json(endpoint, "/api/runs/#{URI.encode_www_form_component(request_id)}")
end

def run_summary(endpoint, request_id)
  get_json(endpoint, "/api/runs/#{URI.encode_www_form_component(request_id)}/summary")
end

# --- what the user sees -------------------------------------------------------------------------------

def thousands(n)
  n.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
end

# A number to `digits` decimals, halves rounded up, from its shortest decimal form (so 123.45 is
# 123.5, as it reads; printf would round the binary value, 123.4499..., down).
def decimals(x, digits)
  format("%.#{digits}f", BigDecimal(x.to_s).round(digits, :half_up))
end

# The headline of a finished run: one line for the run, one per hypothetical tariff.
def headline(request_id, summary)
  lines = ["run #{request_id} done: #{thousands(summary['profiles'])} profiles, #{thousands(summary['impressions'])} impressions"]
  hypothetical = summary["tariffs"].select { |t| t["hypothetical"] }
  lines << "no hypothetical tariff in this run" if hypothetical.empty?
  hypothetical.each do |t|
    lines << "#{t['id']} (#{t['supplier']}): #{thousands(t['impressions'])} impressions, " \
             "page-1 share #{decimals(100 * t['page1_share'], 2)}%, expected clicks #{decimals(t['expected_clicks'], 1)}"
  end
  lines
end

# A progress bar on standard error: redrawn in place on a terminal, a line per change otherwise.
class ProgressBar
  WIDTH = 30

  def initialize(io = $stderr)
    @io = io
    @shown = nil
  end

  def update(done, chunks)
    return if chunks.nil? || chunks.zero? || [done, chunks] == @shown

    @shown = [done, chunks]
    filled = WIDTH * done / chunks
    bar = "[#{'#' * filled}#{'-' * (WIDTH - filled)}] #{done}/#{chunks} chunks"
    if @io.tty?
      @io.print("\r#{bar}")
      @io.print("\n") if done == chunks
    else
      @io.puts(bar)
    end
    @io.flush
  end
end

# --- following the run ------------------------------------------------------------------------------

# Follows one run to its end from two sources: its messages on Redis, and its stored state.
class RunFollower
  QUIET = 5 # seconds without a message before the stored state is read again

  def initialize(endpoint:, redis_url:, request_id:, timeout:, start_timeout:)
    @endpoint = endpoint
    @redis_url = redis_url
    @request_id = request_id
    @pattern = "tariffsim:*:#{request_id}"
    @timeout = timeout
    @start_timeout = start_timeout
    @events = Queue.new
    @bar = ProgressBar.new
    @chunks = nil
    @done = 0
    @redis_up = false
    @started = false
  end

  # Subscribes, calls `start` once (subscribed, or Redis unreachable), follows the run; exits.
  def run(&start)
    @start = start
    @begun = Time.now
    @last_heard = Time.now
    subscribe
    tick
    loop do
      give_up("did not end within #{@timeout} s") if Time.now - @begun > @timeout
      event, *data = @events.pop
      case event
      when :subscribed then subscribed
      when :redis_down then redis_down(data.first)
      when :message then message(data.first)
      when :tick then check_state if !@redis_up || Time.now - @last_heard >= QUIET
      end
    end
  end

  private

  # Redis: messages onto the queue; when the connection fails, say so and try again every second.
  def subscribe
    Thread.new do
      loop do
        Redis.new(url: @redis_url, reconnect_attempts: 0).psubscribe(@pattern) do |on|
          on.psubscribe { @events << [:subscribed] }
          on.pmessage { |_pattern, _channel, text| @events << [:message, text] }
        end
      rescue Redis::BaseConnectionError => e
        @events << [:redis_down, e.message]
        sleep 1
      end
    end
  end

  def tick
    Thread.new do
      loop do
        sleep 1
        @events << [:tick]
      end
    end
  end

  def start_once
    return if @started

    @started = true
    @start.call
    warn "run_client: run #{@request_id} started; following #{@pattern}"
  end

  # Subscribed before the run starts, so no message is missed; after a reconnection (or when the
  # run was started before), the stored state tells what went by meanwhile.
  def subscribed
    @redis_up = true
    @last_heard = Time.now
    start_once
    check_state
  end

  # Without Redis the run still goes on: start it anyway, and read its state every second.
  def redis_down(why)
    warn "run_client: Redis at #{@redis_url} is unreachable (#{why}): following the run's stored state" if @redis_up || !@started
    @redis_up = false
    start_once
  end

  def message(text)
    @last_heard = Time.now
    message = JSON.parse(text)
    case message["event"]
    when "planned" then progress(0, message["chunks"])
    when "chunk-done" then progress(message["done"], message["chunks"])
    when "run-done" then done(message["chunks"])
    when "run-failed" then failed(message)
    when "cancelled" then cancelled(message)
    end
  rescue JSON::ParserError
    nil # not one of ours
  end

  # Where the run stands in storage: the truth when messages were missed.
  def check_state
    state = run_state(@endpoint, @request_id)
    case state && state["status"]
    when "done" then done(state["chunks"])
    when "failed" then failed(state["failure"])
    when "cancelled" then cancelled(state["cancellation"])
    when "running" then progress(state["done"], state["chunks"])
    else
      not_started = state.nil? || state["status"] == "unknown"
      give_up("has not started after #{@start_timeout} s: run-simulation refused it or never ran (look at its logs)") if not_started && Time.now - @begun > @start_timeout
    end
  rescue StandardError => e
    warn "run_client: reading the run's state: #{e.message}" # the next tick tries again
  end

  def progress(done, chunks)
    @chunks = chunks if chunks
    @done = [@done, done || 0].max
    @bar.update(@done, @chunks)
  end

  def done(chunks)
    summary = run_summary(@endpoint, @request_id)
    give_up("is done but its summary is missing") if summary.nil?
    progress(chunks, chunks)
    puts headline(@request_id, summary)
    exit 0
  end

  def failed(failure)
    where = failure["chunk"] ? " (chunk #{failure['chunk']})" : ""
    warn "run_client: run #{@request_id} failed#{where}: #{failure['reason']}"
    exit 1
  end

  def cancelled(cancellation)
    warn "run_client: run #{@request_id} was cancelled: #{cancellation['reason']}"
    exit 1
  end

  def give_up(why)
    warn "run_client: run #{@request_id} #{why}"
    exit 1
  end
end

follower = RunFollower.new(endpoint: endpoint, redis_url: options[:redis], request_id: request_id,
                           timeout: options[:timeout], start_timeout: options[:start_timeout])
follower.run { start_run(endpoint, options[:function], request_id, spec) }
