# Homebrew formula for antigravity-proxy: installs the single-file zipapp that `./build.sh`
# makes (dist/antigravity-proxy.pyz), a wrapper that runs it with Homebrew's Python, and a
# `brew services` definition.
#
# What is installed is the zipapp, not a build from source, and that choice has a cost: the
# zipapp holds compiled extensions (uvloop, orjson) for ONE platform and ONE Python minor
# version, the ones build.sh ran with. So the .pyz this formula points at must have been
# built on the same OS and CPU as the Mac (or Linux box) installing it, with the Python of
# `depends_on` below:
#
#   rm -rf .venv-build      # build.sh reuses this venv, whatever Python made it
#   PYTHON="$(brew --prefix python@3.12)/bin/python3.12" ./build.sh
#
# A wrong build installs fine and then fails on its first start (ImportError from orjson or
# uvloop); `post_install` starts it once (`--version`) and `brew test` serves /health, so
# the mismatch shows at install time. Building from source in the formula instead would
# need pip and PyPI during `brew install` (uvloop and orjson as `resource`s that compile
# libuv and Rust): heavier than the project warrants while there is no release.
#
# Where the .pyz comes from. There is no published release yet, so `url` and `sha256` are
# placeholders (the download fails until they are filled in):
#
#   * A release: attach antigravity-proxy.pyz (one per platform, see above; use `on_arm` /
#     `on_intel` blocks for several) and set `url` to its download URL and `sha256` to the
#     hash in the antigravity-proxy.pyz.sha256 that build.sh writes next to it.
#
#   * A local checkout: Homebrew no longer installs a formula from a file path
#     (`brew install ./homebrew/antigravity-proxy.rb` is refused unless HOMEBREW_DEVELOPER is
#     set), so put a copy pointing at your build into a local tap:
#
#       brew tap-new --no-git "$USER/local"
#       sed -e "s|^  url .*|  url \"file://$PWD/dist/antigravity-proxy.pyz\", using: :nounzip|" \
#           -e "s|^  sha256 .*|  sha256 \"$(cut -d' ' -f1 dist/antigravity-proxy.pyz.sha256)\"|" \
#           homebrew/antigravity-proxy.rb > "$(brew --repository "$USER/local")/Formula/antigravity-proxy.rb"
#       brew install "$USER/local/antigravity-proxy"
#
#     (`url` and `sha256` are each one line starting with two spaces: the sed relies on it.)
#
# Not `head`: a HEAD install clones the repository and would have to run build.sh, i.e. the
# from-source path above. `version` is explicit because a file:// URL carries none; keep it
# equal to pyproject.toml's (tests/integration/test_homebrew_formula.py checks).
class AntigravityProxy < Formula
  desc "Local proxy serving Anthropic, OpenAI and Gemini clients through Antigravity accounts"
  homepage "https://github.com/OWNER/antigravity-proxy"
  url "https://github.com/OWNER/antigravity-proxy/releases/download/v0.1.0/antigravity-proxy.pyz", using: :nounzip
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  version "0.1.0"
  license "MIT"

  depends_on "python@3.12"

  # The Python the zipapp was built for (see the top of this file).
  def python3
    Formula["python@3.12"].opt_bin/"python3.12"
  end

  def install
    libexec.install "antigravity-proxy.pyz"

    # The zipapp's own shebang, `/usr/bin/env python3`, would pick whatever python3 is first
    # on PATH. The wrapper runs it with the formula's Python and gives the command the same
    # defaults as the service below, so `antigravity-proxy accounts add` typed in a shell
    # writes the accounts the service reads. Each can still be overridden from the
    # environment; `AGPROXY_ENV_FILE=` (empty) reads no env file.
    # SHIV_ROOT: shiv unpacks the zipapp's dependencies there on the first start of each
    # version (instead of ~/.shiv, which a service user may not be able to write).
    (bin/"antigravity-proxy").write <<~SH
      #!/bin/sh
      : "${SHIV_ROOT:=#{var}/cache/antigravity-proxy}"
      : "${AGPROXY_DATA_DIR:=#{var}/antigravity-proxy}"
      AGPROXY_ENV_FILE="${AGPROXY_ENV_FILE-#{etc}/antigravity-proxy.env}"
      export SHIV_ROOT AGPROXY_DATA_DIR AGPROXY_ENV_FILE
      exec "#{python3}" "#{libexec}/antigravity-proxy.pyz" "$@"
    SH
    (bin/"antigravity-proxy").chmod 0755

    # post_install copies this to etc/ the first time; later versions leave the user's
    # copy alone, and this one stays for comparison.
    (pkgshare/"antigravity-proxy.env.example").write env_example
  end

  def post_install
    (var/"cache/antigravity-proxy").mkpath
    (var/"log").mkpath
    (var/"antigravity-proxy").mkpath
    (var/"antigravity-proxy").chmod 0700 # account tokens live here

    # The env file may hold AGPROXY_API_KEYS and AGPROXY_ADMIN_PASSWORD: created 0600 in
    # one step (O_EXCL), never replaced once it exists.
    env_file = etc/"antigravity-proxy.env"
    unless env_file.exist?
      etc.mkpath
      File.open(env_file, File::WRONLY | File::CREAT | File::EXCL, 0600) do |file|
        file.write((pkgshare/"antigravity-proxy.env.example").read)
      end
    end

    # The first start unpacks the dependencies into SHIV_ROOT, and a zipapp built for
    # another Python fails here, at install time, rather than in the service's log.
    system bin/"antigravity-proxy", "--version"
  end

  def caveats
    <<~EOS
      Settings are KEY=VALUE lines in
        #{etc}/antigravity-proxy.env
      (mode 600: it may hold AGPROXY_API_KEYS and AGPROXY_ADMIN_PASSWORD). The service
      reads it at start and on SIGHUP; `antigravity-proxy --help-env` lists every variable.
      Accounts and state live in #{var}/antigravity-proxy, the log in
      #{var}/log/antigravity-proxy.log.

      Add a Google account (opens a browser), then start the service:
        antigravity-proxy accounts add
        brew services start antigravity-proxy

      It listens on http://127.0.0.1:9045 (AGPROXY_HOST, AGPROXY_PORT in the env file).
      After editing the env file: brew services restart antigravity-proxy
    EOS
  end

  service do
    run [opt_bin/"antigravity-proxy", "serve"]
    keep_alive true
    log_path var/"log/antigravity-proxy.log"
    error_log_path var/"log/antigravity-proxy.log"
    environment_variables AGPROXY_ENV_FILE: etc/"antigravity-proxy.env",
                          AGPROXY_DATA_DIR: var/"antigravity-proxy",
                          SHIV_ROOT:        var/"cache/antigravity-proxy"
  end

  # The example env file; homebrew/antigravity-proxy.env holds the same text (a test
  # checks they match).
  def env_example
    <<~'EOS'
      # antigravity-proxy settings for `brew services`: one KEY=VALUE per line.
      # The service reads this file at start (AGPROXY_ENV_FILE) and again on SIGHUP; after an
      # edit, `brew services restart antigravity-proxy` applies everything.
      # Blank lines and lines starting with # are ignored; a `#` after a value is part of it.
      # Variables set in the real environment win over this file.
      # This file may hold secrets (AGPROXY_API_KEYS, AGPROXY_ADMIN_PASSWORD): keep it mode 600.
      # The daemon refuses to start when a secret is in it and every user can read it.
      # Every variable: `antigravity-proxy --help-env`.
      # AGPROXY_DATA_DIR is not set here: the service and the brew-installed command fix it to
      # $(brew --prefix)/var/antigravity-proxy, so both see the same accounts.

      # Address and port to listen on. Beyond loopback, AGPROXY_API_KEYS and
      # AGPROXY_ADMIN_PASSWORD are required.
      # AGPROXY_HOST=127.0.0.1
      # AGPROXY_PORT=9045

      # Client keys, comma-separated name=key pairs (a key has at least 8 characters).
      # With none, only loopback clients are served.
      # AGPROXY_API_KEYS=laptop=change-me-to-a-long-random-key

      # Basic-auth password (user admin) of the admin page, /quota and /usage.
      # AGPROXY_ADMIN_PASSWORD=

      # Log verbosity: debug, info, warning or error; plain or json lines; one line per request.
      # The service writes its log to $(brew --prefix)/var/log/antigravity-proxy.log.
      # AGPROXY_LOG_LEVEL=info
      # AGPROXY_LOG_FORMAT=plain
      # AGPROXY_ACCESS_LOG=on

      # Account choice: sticky, round-robin or quota-first.
      # AGPROXY_STRATEGY=sticky

      # JSON file of model aliases with fallback chains.
      # AGPROXY_ROUTES_FILE=

      # Outbound proxy for the upstream, and hosts reached directly.
      # HTTPS_PROXY=http://proxy.example:3128
      # NO_PROXY=localhost,127.0.0.1
    EOS
  end

  test do
    require "net/http"

    # Like the service, but on a free port, with a throwaway data dir and shiv cache, and the
    # port coming from an env file (the way the service gets its settings).
    port = free_port
    env_file = testpath/"antigravity-proxy.env"
    env_file.write "AGPROXY_HOST=127.0.0.1\nAGPROXY_PORT=#{port}\n"
    env_file.chmod 0600
    ENV["AGPROXY_ENV_FILE"] = env_file.to_s
    ENV["AGPROXY_DATA_DIR"] = (testpath/"data").to_s
    ENV["SHIV_ROOT"] = (testpath/"shiv").to_s

    assert_match version.to_s, shell_output("#{bin}/antigravity-proxy --version")

    pid = spawn((bin/"antigravity-proxy").to_s, "serve")
    status = nil
    begin
      body = nil
      60.times do
        _, status = Process.wait2(pid, Process::WNOHANG)
        flunk "antigravity-proxy serve exited before answering /health" if status
        begin
          body = Net::HTTP.get(URI("http://127.0.0.1:#{port}/health"))
          break
        rescue SystemCallError, IOError, Timeout::Error
          sleep 0.5
        end
      end
      assert_match '"status":"ok"', body.to_s
    ensure
      unless status
        Process.kill("TERM", pid)
        _, status = Process.wait2(pid)
      end
    end
    assert_predicate status, :success?, "SIGTERM should stop it with exit code 0"
  end
end
