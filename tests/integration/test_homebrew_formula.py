"""The Homebrew formula (homebrew/antigravity-proxy.rb) against the real CLI and zipapp.

Homebrew itself is not here (macOS, and it would install from the network), so:
- `ruby -wc` checks the syntax;
- the formula's text is read with regexes for what it tells Homebrew: the service's command
  line must be a real subcommand, every variable it sets must be one the daemon knows, and the
  example env file may only name known variables;
- the `test do` block's command is run against the built zipapp, the way the wrapper runs it;
- a stand-in for the few Formula and Service methods the formula calls evaluates the real Ruby
  of `install`, `post_install`, `service do` and `test do` in a temporary prefix, then starts
  the service's command with the service's environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from daemon import config, env_file
from tests.clients import build_zipapp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parent.parent.parent
FORMULA = ROOT / "homebrew" / "antigravity-proxy.rb"
ENV_EXAMPLE = ROOT / "homebrew" / "antigravity-proxy.env"
PYZ_NAME = "antigravity-proxy.pyz"


# --- reading the formula -------------------------------------------------------------------


def formula() -> str:
    return FORMULA.read_text()


def block(opening: str) -> str:
    """The body of a two-space-indented `<opening>` ... `  end` block of the formula."""
    match = re.search(rf"^  {re.escape(opening)}\n(.*?)^  end$", formula(), re.MULTILINE | re.DOTALL)
    assert match, f"no `{opening}` block in {FORMULA.name}"
    return match.group(1)


def ruby_path(expression: str) -> tuple[str, str]:
    """`var/"cache/x"` → ("var", "cache/x")."""
    match = re.fullmatch(r'(\w+)/"([^"]+)"', expression.strip())
    assert match, f"not a Homebrew path expression: {expression!r}"
    return match.group(1), match.group(2)


def service_run() -> list[str]:
    match = re.search(r"^\s*run \[(.*)\]\s*$", block("service do"), re.MULTILINE)
    assert match, "the service has no `run [...]` line"
    return [item.strip() for item in match.group(1).split(",")]


def service_environment() -> dict[str, tuple[str, str]]:
    match = re.search(r"environment_variables (.*?)(?=\n    \w+ |\Z)", block("service do"), re.DOTALL)
    assert match, "the service sets no environment_variables"
    pairs = re.findall(r'(\w+):\s*(\w+/"[^"]+")', match.group(1))
    assert pairs and len(pairs) == match.group(1).count(":"), match.group(1)
    return {name: ruby_path(path) for name, path in pairs}


def heredoc(method: str) -> str:
    """The text of the squiggly heredoc a `def <method>` returns."""
    match = re.search(rf"^  def {method}\n    <<~'?EOS'?\n(.*?)^    EOS$", formula(), re.MULTILINE | re.DOTALL)
    assert match, f"no heredoc in def {method}"
    return textwrap.dedent(match.group(1))


def wrapper_script() -> str:
    match = re.search(r'^    \(bin/"antigravity-proxy"\)\.write <<~SH\n(.*?)^    SH$', formula(),
                      re.MULTILINE | re.DOTALL)
    assert match, "install writes no bin/antigravity-proxy wrapper"
    return textwrap.dedent(match.group(1))


def python_formula() -> tuple[str, str]:
    """(`python@3.12`, `python3.12`): the Python the wrapper runs, which must be the dependency."""
    match = re.search(r'Formula\["(python@[\d.]+)"\]\.opt_bin/"(python[\d.]+)"', formula())
    assert match, "the formula does not say which Python runs the zipapp"
    return match.group(1), match.group(2)


def known_variables() -> set[str]:
    return {var.name for var in config.ENV}


def example_assignments(text: str) -> dict[str, str]:
    """Every `KEY=VALUE` line of the example, commented out or not."""
    return dict(re.findall(r"^#? ?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text, re.MULTILINE))


def subcommands() -> set[str]:
    result = subprocess.run([sys.executable, "-m", "daemon", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    listing = result.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^    (\S+)\s{2,}", listing, re.MULTILINE))


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# --- running things ------------------------------------------------------------------------


def ruby() -> str:
    path = shutil.which("ruby")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("ruby is missing in CI (.ci/run installs it with apt-get)")
        pytest.skip("ruby is not installed (apt-get install ruby)")
    return path


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any AGPROXY_* or SHIV_ROOT of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGPROXY_") and k != "SHIV_ROOT"}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def private_env_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Starts `command`, waits until GET /health on `port` answers, yields the body; then
    SIGTERM, which must end it with exit code 0."""
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    body = response.read().decode()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"{command} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer on port {port}:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
        yield body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


# --- the formula's text ----------------------------------------------------------------------


def test_ruby_accepts_the_formula() -> None:
    result = subprocess.run([ruby(), "-wc", str(FORMULA)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Syntax OK"
    assert not result.stderr.strip(), f"ruby warns: {result.stderr}"


def test_the_service_runs_a_real_subcommand() -> None:
    program, *arguments = service_run()
    assert program == 'opt_bin/"antigravity-proxy"'
    assert arguments == ['"serve"']
    assert arguments[0].strip('"') in subcommands()
    service = block("service do")
    assert re.search(r"^    keep_alive true$", service, re.MULTILINE)
    for setting in ("log_path", "error_log_path"):
        match = re.search(rf"^    {setting} (.+)$", service, re.MULTILINE)
        assert match and ruby_path(match.group(1)) == ("var", "log/antigravity-proxy.log"), setting


def test_the_service_sets_only_variables_the_daemon_knows() -> None:
    environment = service_environment()
    unknown = set(environment) - known_variables() - {"SHIV_ROOT"}
    assert not unknown, f"not in daemon/config.py's ENV: {sorted(unknown)}"
    assert environment["AGPROXY_ENV_FILE"] == ("etc", "antigravity-proxy.env")
    assert environment["AGPROXY_DATA_DIR"] == ("var", "antigravity-proxy")
    assert environment["SHIV_ROOT"] == ("var", "cache/antigravity-proxy")


def test_the_wrapper_runs_the_pyz_with_the_formulas_python_and_the_services_defaults() -> None:
    script = wrapper_script()
    assert script.startswith("#!/bin/sh\n")
    python_name, _ = python_formula()
    assert re.search(rf'^  depends_on "{re.escape(python_name)}"$', formula(), re.MULTILINE)
    assert script.rstrip().endswith(f'exec "#{{python3}}" "#{{libexec}}/{PYZ_NAME}" "$@"')
    # Each default the wrapper gives equals what the service sets, so a command typed in a
    # shell (`antigravity-proxy accounts add`) sees the service's accounts and settings.
    defaults = {name: (base, rest) for name, base, rest in
                re.findall(r'\$\{(\w+):?[=-]#\{(\w+)\}/([^}]+)\}', script)}
    assert defaults == service_environment()
    assert set(re.findall(r"^export (.+)$", script, re.MULTILINE)[0].split()) == set(defaults)


def test_the_example_env_file_names_known_variables_and_every_example_value_is_valid() -> None:
    text = ENV_EXAMPLE.read_text()
    assignments = example_assignments(text)
    assert {"AGPROXY_HOST", "AGPROXY_PORT", "AGPROXY_API_KEYS", "AGPROXY_ADMIN_PASSWORD",
            "AGPROXY_LOG_LEVEL"} <= set(assignments)
    unknown = set(assignments) - known_variables()
    assert not unknown, f"not in daemon/config.py's ENV: {sorted(unknown)}"
    # Fixed by the service and the wrapper, so a value here would be silently overridden.
    assert not {"AGPROXY_DATA_DIR", "AGPROXY_ENV_FILE", "SHIV_ROOT"} & set(assignments)
    # As shipped, every line is commented out: copying it changes nothing and holds no secret.
    assert env_file.parse(text) == {}
    # Uncommented, each example value is one the daemon accepts.
    uncommented = re.sub(r"^# ?(?=[A-Z_]+=)", "", text, flags=re.MULTILINE)
    values = env_file.parse(uncommented)
    assert values == assignments
    config.load(values)


def test_the_formula_carries_the_example_env_file_verbatim() -> None:
    assert heredoc("env_example") == ENV_EXAMPLE.read_text()


def test_the_formula_version_is_the_projects_and_url_and_sha256_are_one_line_each() -> None:
    text = formula()
    assert re.findall(r'^  version "([^"]+)"$', text, re.MULTILINE) == [project_version()]
    # The local-tap recipe in the formula's header replaces these two lines with sed.
    urls = re.findall(r"^  url (.+)$", text, re.MULTILINE)
    assert len(urls) == 1 and len(re.findall(r"^  sha256 ", text, re.MULTILINE)) == 1
    # A zipapp is a zip behind a shebang: staged as the file itself, under the name install uses.
    assert re.fullmatch(rf'"[^"]+/{re.escape(PYZ_NAME)}", using: :nounzip', urls[0])
    assert f'libexec.install "{PYZ_NAME}"' in text


# --- the zipapp, run the way the formula runs it -------------------------------------------


def test_the_test_blocks_command_serves_health_from_the_zipapp(tmp_path: Path) -> None:
    test_block = block("test do")
    for piece in ("free_port", 'ENV["AGPROXY_ENV_FILE"]', 'ENV["AGPROXY_DATA_DIR"]', 'ENV["SHIV_ROOT"]',
                  '"serve"', "/health", """'"status":"ok"'""", "--version"):
        assert piece in test_block, f"the test block no longer does {piece}; update this test"

    zipapp = build_zipapp()
    port = free_port()
    # What the test block sets up, run the way the wrapper runs it (python + pyz + SHIV_ROOT).
    environment = clean_environment(
        AGPROXY_ENV_FILE=str(private_env_file(tmp_path / "antigravity-proxy.env",
                                              f"AGPROXY_HOST=127.0.0.1\nAGPROXY_PORT={port}\n")),
        AGPROXY_DATA_DIR=str(tmp_path / "data"), SHIV_ROOT=str(tmp_path / "shiv"))
    command = [sys.executable, str(zipapp)]
    version = subprocess.run([*command, "--version"], env=environment, capture_output=True, text=True, timeout=60,
                             check=False)
    assert version.returncode == 0 and project_version() in version.stdout, version
    with serving([*command, "serve"], environment, port, tmp_path / "log") as body:
        assert '"status":"ok"' in body
    assert any((tmp_path / "shiv").iterdir()), "shiv did not unpack into SHIV_ROOT"


# --- the formula's Ruby, under a stand-in for Homebrew ----------------------------------------

# Just the Formula and Service methods the formula calls, defined the way Homebrew documents
# them. There is no method_missing: a DSL call this does not know fails the test, and is added
# here on purpose.
STAND_IN = r'''
require "fileutils"
require "json"
require "pathname"
require "socket"

PREFIX = Pathname(ENV.fetch("STUB_PREFIX"))

class AssertionFailed < Exception; end

class Pathname
  # Homebrew: moves the files into this directory.
  def install(*sources)
    mkpath
    sources.each { |source| FileUtils.mv(source.to_s, join(File.basename(source.to_s)).to_s) }
  end

  # Homebrew: creates the parent directories and refuses to overwrite.
  def write(content)
    raise "Will not overwrite #{self}" if exist?
    dirname.mkpath
    File.write(to_s, content)
  end
end

class Formula
  include FileUtils

  Installed = Struct.new(:name) do
    def opt_bin
      PREFIX/"opt"/name/"bin"
    end
  end

  class << self
    attr_reader :service_block, :test_block

    def spec
      @spec ||= {}
    end

    %i[desc homepage sha256 version license].each do |field|
      define_method(field) { |value| spec[field] = value }
    end

    def url(value, **options)
      spec[:url] = value
      spec[:url_options] = options
    end

    def depends_on(name)
      (spec[:depends_on] ||= []) << name
    end

    def service(&block)
      @service_block = block
    end

    def test(&block)
      @test_block = block
    end

    def [](name)
      Installed.new(name)
    end
  end

  def name = "antigravity-proxy"
  def version = self.class.spec.fetch(:version)
  def prefix = PREFIX/"Cellar"/name/version
  def bin = prefix/"bin"
  def libexec = prefix/"libexec"
  def pkgshare = prefix/"share"/name
  def opt_prefix = PREFIX/"opt"/name
  def opt_bin = opt_prefix/"bin"
  def etc = PREFIX/"etc"
  def var = PREFIX/"var"

  def system(*args)
    Kernel.system(*args.map(&:to_s)) || raise("failed: #{args.join(" ")}")
  end

  # test do
  def testpath = Pathname(ENV.fetch("STUB_TESTPATH"))

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end

  def shell_output(command, result = 0)
    output = `#{command}`
    raise AssertionFailed, "#{command} exited with #{$?.exitstatus}" unless $?.exitstatus == result
    output
  end

  def assert_match(pattern, text, message = nil)
    pattern = Regexp.new(Regexp.escape(pattern)) if pattern.is_a?(String)
    raise AssertionFailed, message || "#{text.inspect} does not match #{pattern.inspect}" unless pattern.match?(text)
  end

  def assert_predicate(object, predicate, message = nil)
    raise AssertionFailed, message || "#{object.inspect} is not #{predicate}" unless object.public_send(predicate)
  end

  def flunk(message = "flunked")
    raise AssertionFailed, message
  end
end

class ServiceStandIn
  attr_reader :spec

  def initialize(formula)
    @formula = formula
    @spec = {}
  end

  %i[bin etc libexec opt_bin var].each { |name| define_method(name) { @formula.public_send(name) } }

  def run(command) = spec[:run] = Array(command).map(&:to_s)
  def keep_alive(value) = spec[:keep_alive] = value
  def log_path(path) = spec[:log_path] = path.to_s
  def error_log_path(path) = spec[:error_log_path] = path.to_s
  def environment_variables(variables) = spec[:environment_variables] = variables.transform_values(&:to_s)
end

formula_path, action = ARGV
load formula_path
formula = AntigravityProxy.new
case action
when "install"
  Dir.chdir(ENV.fetch("STUB_BUILDPATH")) { formula.install }
  formula.opt_prefix.dirname.mkpath
  File.symlink(formula.prefix, formula.opt_prefix) # what `brew link` leaves behind
  formula.post_install
  service = ServiceStandIn.new(formula)
  service.instance_eval(&AntigravityProxy.service_block)
  puts JSON.generate({ "spec" => AntigravityProxy.spec, "service" => service.spec, "caveats" => formula.caveats,
                       "bin" => formula.bin.to_s, "etc" => formula.etc.to_s, "var" => formula.var.to_s })
when "post_install"
  formula.post_install
when "test"
  Dir.chdir(formula.testpath) { formula.instance_eval(&AntigravityProxy.test_block) }
  puts "test do: passed"
end
'''


def test_install_post_install_service_and_test_block_under_a_homebrew_stand_in(tmp_path: Path) -> None:
    interpreter = ruby()
    zipapp = build_zipapp()
    prefix = tmp_path / "prefix"
    python_name, python_binary = python_formula()
    python = prefix / "opt" / python_name / "bin" / python_binary
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)  # the zipapp was built for this interpreter's version
    buildpath = tmp_path / "build"
    buildpath.mkdir()
    shutil.copy(zipapp, buildpath / PYZ_NAME)  # what `using: :nounzip` stages
    stand_in = tmp_path / "stand_in.rb"
    stand_in.write_text(STAND_IN)
    base_env = clean_environment(STUB_PREFIX=str(prefix), STUB_BUILDPATH=str(buildpath),
                                 STUB_TESTPATH=str(tmp_path / "testpath"))

    def stand_in_run(action: str) -> str:
        result = subprocess.run([interpreter, str(stand_in), str(FORMULA), action], env=base_env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, f"{action}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    installed = json.loads(stand_in_run("install").splitlines()[-1])
    etc, var = Path(installed["etc"]), Path(installed["var"])

    # install + post_install
    wrapper = Path(installed["bin"]) / "antigravity-proxy"
    assert wrapper.stat().st_mode & 0o777 == 0o755
    settings = etc / "antigravity-proxy.env"
    assert settings.read_text() == ENV_EXAMPLE.read_text()
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert stat.S_IMODE((var / "antigravity-proxy").stat().st_mode) == 0o700
    assert any((var / "cache" / "antigravity-proxy").iterdir()), "post_install's first start unpacked nothing"
    assert installed["spec"]["version"] == project_version()
    assert installed["spec"]["depends_on"] == [python_name]
    for mention in (str(settings), "antigravity-proxy accounts add", "brew services start antigravity-proxy"):
        assert mention in installed["caveats"]

    # A user's edits survive the next post_install (an upgrade).
    port = free_port()
    settings.write_text(settings.read_text() + f"AGPROXY_PORT={port}\n")
    stand_in_run("post_install")
    assert settings.read_text().endswith(f"AGPROXY_PORT={port}\n")
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600

    # The service: its command with its environment (launchd passes little else), the port
    # coming from the env file, the log where log_path says.
    service = installed["service"]
    assert service["run"] == [str(prefix / "opt" / "antigravity-proxy" / "bin" / "antigravity-proxy"), "serve"]
    assert service["keep_alive"] is True
    assert service["log_path"] == service["error_log_path"] == str(var / "log" / "antigravity-proxy.log")
    assert service["environment_variables"] == {"AGPROXY_ENV_FILE": str(settings),
                                                "AGPROXY_DATA_DIR": str(var / "antigravity-proxy"),
                                                "SHIV_ROOT": str(var / "cache" / "antigravity-proxy")}
    home = tmp_path / "home"
    home.mkdir()
    launchd_env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home), **service["environment_variables"]}
    log = Path(service["log_path"])
    with serving(service["run"], launchd_env, port, log) as body:
        assert '"status":"ok"' in body
    assert f"listening on http://127.0.0.1:{port} (data in {var / 'antigravity-proxy'})" in log.read_text()
    assert not any(home.iterdir()), "the service wrote into HOME"

    # The formula's own `test do` block, run against the installed wrapper and zipapp.
    (tmp_path / "testpath").mkdir()
    assert "test do: passed" in stand_in_run("test")
