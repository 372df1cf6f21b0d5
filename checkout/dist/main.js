'use strict';
// mirrorci checkout as a JavaScript action: find the runner's python3 (3.10 or later)
// and run the CI entry (mirrorci/ci) from the action's own files. No container image,
// no npm dependencies, no build step: node's standard library only.
//
// The action's root (two levels up: <root>/checkout/dist/main.js) holds the mirrorci
// package. It goes first on sys.path and the working directory is kept off it, so a
// `mirrorci/` directory left in the workspace by an earlier job cannot stand in for it.

const { spawn, spawnSync } = require('child_process');
const os = require('os');
const path = require('path');

const MIN_PYTHON = [3, 10];
const ROOT = path.resolve(__dirname, '..', '..');
const PROBE = 'import sys; print("%d.%d %s" % (sys.version_info[0], sys.version_info[1], sys.executable))';
// -c code run with the probed interpreter: argv[1] is the action's root, the rest the CI entry's arguments.
const BOOT = 'import sys; sys.path[0] = sys.argv.pop(1); from mirrorci.ci import main; sys.exit(main(sys.argv[1:]))';

function candidates(env, platform) {
  const list = [];
  if (env.MIRRORCI_PYTHON) list.push([env.MIRRORCI_PYTHON]);
  if (platform === 'win32') list.push(['python'], ['py', '-3'], ['python3']);
  else list.push(['python3'], ['python']);
  return list;
}

function newEnough(major, minor) {
  return major > MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor >= MIN_PYTHON[1]);
}

// The first candidate that runs and is new enough: { command, version, executable } or { found } (what was seen instead).
function findPython(env, platform) {
  const found = [];
  for (const [cmd, ...pre] of candidates(env, platform)) {
    const probe = spawnSync(cmd, [...pre, '-c', PROBE], { encoding: 'utf8', env, timeout: 60000, windowsHide: true });
    if (probe.error || probe.status !== 0) continue;
    const m = /^(\d+)\.(\d+) (.*)$/m.exec((probe.stdout || '').trim());
    if (!m) continue;
    if (newEnough(Number(m[1]), Number(m[2]))) return { command: [cmd, ...pre], version: `${m[1]}.${m[2]}`, executable: m[3].trim() };
    found.push(`${[cmd, ...pre].join(' ')} is ${m[1]}.${m[2]}`);
  }
  return { found };
}

// Every input (ssh-key, sparse-checkout, allow-unsafe-pr-checkout, ...) reaches mirrorci as an
// INPUT_<NAME> variable (mirrorci/ci/inputs.py). The runner keeps the hyphens (INPUT_FETCH-TAGS), which
// no shell accepts in a name: a python3 that is a shell script (a version manager's shim, a wrapper
// named by MIRRORCI_PYTHON) would drop those variables. Each is also passed as INPUT_FETCH_TAGS.
function childEnv(env) {
  const out = { ...env, PYTHONUNBUFFERED: '1' };
  for (const [name, value] of Object.entries(env)) {
    const plain = name.replace(/-/g, '_');
    if (name.startsWith('INPUT_') && plain !== name && !(plain in out)) out[plain] = value;
  }
  if (!out.PYTHONUTF8 && !out.PYTHONIOENCODING) out.PYTHONUTF8 = '1';
  // s3 and torrent packages, installed on demand the first time such a method is tried (mirrorci/ondemand.py).
  if (!out.MIRRORCI_DEPS_DIR) out.MIRRORCI_DEPS_DIR = path.join(env.RUNNER_TOOL_CACHE || env.RUNNER_TEMP || os.tmpdir(), 'mirrorci-deps');
  return out;
}

function main() {
  const command = process.argv[2] || 'checkout';
  const python = findPython(process.env, process.platform);
  if (!python.command) {
    const seen = python.found.length ? `found only ${python.found.join(', ')}` : 'found no python3 on PATH';
    process.stdout.write(`::error::mirrorci ${command} needs Python ${MIN_PYTHON.join('.')} or later on the runner and ${seen}: ` +
      `add actions/setup-python before this step, or set MIRRORCI_PYTHON to an interpreter${os.EOL}`);
    process.exitCode = 2;
    return;
  }
  const [exe, ...pre] = python.command;
  const child = spawn(exe, [...pre, '-c', BOOT, ROOT, command], { stdio: 'inherit', env: childEnv(process.env), windowsHide: true });
  // A cancelled job signals this process: pass it on, so mirrorci cleans up as it does for Ctrl-C.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stdout.write(`::error::cannot start ${exe}: ${err.message}${os.EOL}`);
    process.exitCode = 2;
  });
  child.on('exit', (code, signal) => {
    process.exitCode = code === null ? 1 : code;
    if (signal) process.stdout.write(`::error::mirrorci ${command} was stopped by ${signal}${os.EOL}`);
  });
}

if (require.main === module) main();
module.exports = { candidates, findPython, newEnough, childEnv, ROOT, BOOT };
