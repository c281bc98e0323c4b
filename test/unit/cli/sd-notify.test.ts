import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/log.js';
import { createNotifier, notifyArgs } from '../../../src/cli/sd-notify.js';

describe('sd_notify messages', () => {
  it('claim the daemon pid and list the assignments in a fixed order', () => {
    expect(notifyArgs({ STATUS: 'serving /dev/vtpm-a', READY: '1' }, 4242)).toEqual(['--pid=4242', 'READY=1', 'STATUS=serving /dev/vtpm-a']);
    expect(notifyArgs({ STOPPING: '1' }, 7)).toEqual(['--pid=7', 'STOPPING=1']);
  });

  it('a newline in a value cannot forge another field', () => {
    expect(notifyArgs({ STATUS: 'a\nREADY=1' }, 1)).toEqual(['--pid=1', 'STATUS=a READY=1']);
  });

  it('without NOTIFY_SOCKET nothing is sent, even when the sender binary does not exist', async () => {
    const n = createNotifier(silentLogger, {}, '/nonexistent/systemd-notify');
    expect(n.active).toBe(false);
    await expect(n.send({ READY: '1' })).resolves.toBeUndefined();
  });

  it('a missing sender binary is a warning, never a failure', async () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    const n = createNotifier(log, { NOTIFY_SOCKET: '/run/nothing-here' }, '/nonexistent/systemd-notify');
    await n.send({ READY: '1' });
    expect(warnings.join('\n')).toMatch(/ENOENT.*READY/);
  });
});
