import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { createNotifier, notifyMessage } from '../../../src/cli/sd-notify.js';

describe('sd_notify messages', () => {
  it('list the assignments in a fixed order, one per line', () => {
    expect(notifyMessage({ STATUS: 'serving /dev/vtpm-a', READY: '1' })).toBe('READY=1\nSTATUS=serving /dev/vtpm-a');
    expect(notifyMessage({ STOPPING: '1' })).toBe('STOPPING=1');
  });

  it('a newline in a value cannot forge another field', () => {
    expect(notifyMessage({ STATUS: 'a\nREADY=1' })).toBe('STATUS=a READY=1');
  });

  it('without NOTIFY_SOCKET nothing is sent', () => {
    const sent: string[] = [];
    const n = createNotifier(silentLogger, {}, (_p, m) => sent.push(m.toString()));
    expect(n.active).toBe(false);
    n.send({ READY: '1' });
    expect(sent).toEqual([]);
  });

  it('sends each message as it comes, to the socket named', () => {
    const sent: [string, string][] = [];
    const n = createNotifier(silentLogger, { NOTIFY_SOCKET: '@vtpmd-test' }, (p, m) => sent.push([p, m.toString()]));
    n.send({ READY: '1', STATUS: 'up' });
    n.send({ STOPPING: '1' });
    expect(sent).toEqual([['@vtpmd-test', 'READY=1\nSTATUS=up'], ['@vtpmd-test', 'STOPPING=1']]);
  });

  it('a socket nobody listens on is a warning that names the errno, never a failure', () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    const n = createNotifier(log, { NOTIFY_SOCKET: '/run/nothing-here/notify' });
    n.send({ READY: '1' });
    expect(warnings.join('\n')).toMatch(/ENOENT.*READY/);
    createNotifier(log, { NOTIFY_SOCKET: '@vtpmd-nobody-listens-here' }).send({ STOPPING: '1' });
    expect(warnings.join('\n')).toMatch(/ECONNREFUSED.*STOPPING/);
  });
});
