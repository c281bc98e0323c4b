// The daemons' options parsed without yargs: the values a command receives are those yargs
// gives for the same command line, and whatever needs yargs (help, version, mistakes) is left to it.
import yargs from 'yargs';
import { describe, expect, it } from 'vitest';
import { CUSE_OPTIONS, parseCommandArgv, SETUP_OPTIONS, SOCKET_OPTIONS, type CommandOption } from '../../../src/cli/command-options.js';

/** What yargs hands the command, reduced to the long option names, each as an array like ours. */
function viaYargs(argv: string[], options: Record<string, CommandOption>): Record<string, unknown> {
  const parsed = yargs(argv).options(options).strict().exitProcess(false).fail((m) => { throw new Error(m); }).parseSync();
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(options)) {
    const v = parsed[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v : [v];
  }
  return out;
}

describe('daemon options without yargs', () => {
  const lines: [string[], Record<string, CommandOption>][] = [
    [['--tpm2', '--tpmstate', 'dir=/s', '--server', 'type=unixio,path=/run/d', '--ctrl=type=unixio,path=/run/c', '--flags', 'not-need-init,startup-clear'], SOCKET_OPTIONS],
    [['--tpm2', '-p', '2321', '--ctrl', 'type=tcp,port=2322', '-d', '-t', '--pid', 'file=/p', '--log', 'fd=2,level=20'], SOCKET_OPTIONS],
    [['--tpm2', '--key', 'pwdfd=3,mode=aes-256-cbc', '--key', 'file=/k', '--migration-key', 'file=/m', '-r', 'tss', '--print-capabilities'], SOCKET_OPTIONS],
    [['--tpm2', '-n', 'vtpm0', '-M', '10', '-m', '224', '--tpmstate', 'dir=/s', '--print-states'], CUSE_OPTIONS],
    [['--tpm2', '--tpm-state', '/s', '--vmid', 'vm:1', '--logfile', '/l', '--createek', '--create-ek-cert', '--create-platform-cert', '--lock-nvram', '--not-overwrite', '--pwdfile-fd', '5', '--cipher', 'aes-256-cbc'], SETUP_OPTIONS],
    [['--tpm2', '--tpmstate', '/s', '--reconfigure', '--pcr-banks', 'sha256', '--pcr-banks=-', '--create-config-files', 'root'], SETUP_OPTIONS],
  ];
  it('gives the values yargs gives', () => {
    for (const [argv, options] of lines) expect(parseCommandArgv(argv, options), argv.join(' ')).toEqual(viaYargs(argv, options));
  });

  it('leaves help, version, unknown or malformed options and stray words to yargs', () => {
    for (const argv of [['--help'], ['-h'], ['--version'], ['--tpm2', '--bogus'], ['--tpm2', 'extra'], ['--tpm2=yes'], ['--no-tpm2'], ['--name', 'x']]) {
      expect(parseCommandArgv(argv, SOCKET_OPTIONS), argv.join(' ')).toBeNull();
    }
    // --create-config-files without its flags, and both spellings of --tpm-state.
    for (const argv of [['--create-config-files'], ['--tpm-state', '/a', '--tpmstate', '/b']]) expect(parseCommandArgv(argv, SETUP_OPTIONS), argv.join(' ')).toBeNull();
  });
});
