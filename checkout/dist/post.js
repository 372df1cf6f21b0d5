'use strict';
// Post step of the mirrorci checkout action: remove the credentials persist-credentials left,
// as actions/checkout (v6 and later) does. The token lives in a 0600 file (under RUNNER_TEMP)
// that the clone's config pulls in with include.path (mirrorci/auth.py persist()); this
// deletes the file (and an ssh key and known_hosts persisted beside it) and drops the include.
// The main step handed over the repository's path, the file's name and any other files to
// delete (one path per line) through $GITHUB_STATE (mirrorci/ci/run.py): they arrive as STATE_*.
// Every include of a mirrorci credentials file is removed, also one a failed run left.
// Never fails the job: a problem is a warning.

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const CREDENTIALS = /(^|[\\/])mirrorci-credentials-[0-9a-f]+\.config$/;

function state(env, name) {
  return (env[`STATE_${name}`] || '').trim();
}

// The config file of the repository at `repo` (a work tree with .git as a directory, or as a `gitdir:` file).
function configOf(repo) {
  const dotgit = path.join(repo, '.git');
  let st;
  try { st = fs.statSync(dotgit); } catch (e) { return null; }
  if (st.isDirectory()) return path.join(dotgit, 'config');
  const m = /^gitdir:\s*(.+)$/m.exec(fs.readFileSync(dotgit, 'utf8'));
  return m ? path.join(path.resolve(repo, m[1].trim()), 'config') : null;
}

function escapeRegex(text) {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

// git config --file: reads and edits the file without looking for a repository, so no safe.directory check.
function git(args) {
  return spawnSync('git', args, { encoding: 'utf8', windowsHide: true });
}

// Files the main step listed for deletion: one path per line, absolute paths only.
function listed(env, name) {
  return state(env, name).split(/\r?\n/).map((line) => line.trim()).filter((line) => path.isAbsolute(line));
}

function cleanup(env) {
  const repo = state(env, 'repository_path');
  const named = state(env, 'credentials_file');
  const files = new Set(named ? [named] : []);
  const others = listed(env, 'remove_files');
  const config = repo ? configOf(repo) : null;
  if (config && fs.existsSync(config)) {
    const includes = git(['config', '--file', config, '--get-all', 'include.path']);
    for (const value of (includes.stdout || '').split(/\r?\n/)) {
      if (value && CREDENTIALS.test(value)) files.add(value);
    }
  }
  const problems = [];
  for (const file of files) {
    if (config && fs.existsSync(config)) {
      const unset = git(['config', '--file', config, '--unset-all', 'include.path', `^${escapeRegex(file)}$`]);
      if (unset.error || (unset.status !== 0 && unset.status !== 5)) { // 5: no such entry
        problems.push(`cannot drop the include of ${file} from ${config}: ${(unset.stderr || String(unset.error)).trim()}`);
      }
    }
    remove(file, problems);
    // An ssh key persisted with it (mirrorci/ssh.py persist()): <base>.key and <base>.known_hosts beside <base>.config.
    if (CREDENTIALS.test(file)) {
      for (const suffix of ['.key', '.known_hosts']) remove(file.replace(/\.config$/, suffix), problems);
    }
  }
  for (const file of others) remove(file, problems);
  return { files: [...files], others, problems };
}

// A file only: a directory named here is a mistake, never a tree to delete.
function remove(file, problems) {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    problems.push(`cannot remove ${file}: ${err.message}`);
  }
}

function main() {
  try {
    const { files, others, problems } = cleanup(process.env);
    for (const problem of problems) process.stdout.write(`::warning::${problem}${os.EOL}`);
    if (files.length) process.stdout.write(`removed the persisted credentials (${files.length} file${files.length > 1 ? 's' : ''})${os.EOL}`);
    if (others.length) process.stdout.write(`removed ${others.length} file${others.length > 1 ? 's' : ''} the checkout left (${others.map((f) => path.basename(f)).join(', ')})${os.EOL}`);
  } catch (err) {
    process.stdout.write(`::warning::removing the persisted credentials failed: ${err.message}${os.EOL}`);
  }
}

if (require.main === module) main();
module.exports = { cleanup, configOf, escapeRegex, listed, CREDENTIALS };
