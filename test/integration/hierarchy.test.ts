// tpm2_changeauth on the hierarchies (HierarchyChangeAuth through tpm2-tools' HMAC sessions),
// the same outcomes on vtpmd and swtpm.
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeImpls, makeTempDir, startDaemon } from '../helpers/daemon.js';
import { tpm2, tpm2ok } from '../helpers/tools.js';

describeImpls('hierarchy authorization', (impl) => {
  it('tpm2_changeauth on owner, endorsement, lockout and platform; the new auth is required', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    await tpm2ok('changeauth', d.tcti, ['-c', 'o', 'owner-pw']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'e', 'eh-pw']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'l', 'lock-pw']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'p', 'plat-pw']);
    const denied = await tpm2('createprimary', d.tcti, ['-C', 'o', '-G', 'ecc', '-c', path.join(work, 'a.ctx')]);
    expect(denied.stderr).toMatch(/0x9a2/i);
    await tpm2ok('createprimary', d.tcti, ['-C', 'o', '-P', 'owner-pw', '-G', 'ecc', '-c', path.join(work, 'b.ctx')]);
    await tpm2ok('flushcontext', d.tcti, ['-t']);
    // A wrong lockout password is a dictionary-attack failure, not just a bad password.
    const lock = await tpm2('changeauth', d.tcti, ['-c', 'l', '-p', 'wrong', 'x']);
    expect(lock.stderr).toMatch(/0x98e/i);
    await tpm2ok('changeauth', d.tcti, ['-c', 'o', '-p', 'owner-pw']);
    await tpm2ok('createprimary', d.tcti, ['-C', 'o', '-G', 'ecc', '-c', path.join(work, 'c.ctx')]);
    await tpm2ok('flushcontext', d.tcti, ['-t']);
    const props = await tpm2ok('getcap', d.tcti, ['properties-variable']);
    expect(props.stdout).toMatch(/ownerAuthSet:\s+0/);
    expect(props.stdout).toMatch(/endorsementAuthSet:\s+1/);
    expect(props.stdout).toMatch(/lockoutAuthSet:\s+1/);
  });
});

describeImpls('session contexts', (impl) => {
  it('tpm2_startauthsession -S saves a session; it loads again to authorize, and flushes while saved', async () => {
    const d = await startDaemon({ impl, flags: ['not-need-init', 'startup-clear'] });
    const work = makeTempDir();
    const s = path.join(work, 'hmac.ctx');
    await tpm2ok('startauthsession', d.tcti, ['--hmac-session', '-S', s]);
    const saved = await tpm2ok('getcap', d.tcti, ['handles-saved-session']);
    expect(saved.stdout).toMatch(/0x2000000/);
    // ContextLoad, HMAC authorization of the owner, ContextSave again (tpm2-tools does all three).
    await tpm2ok('changeauth', d.tcti, ['-c', 'o', '-p', `session:${s}`, 'owner-pw']);
    await tpm2ok('changeauth', d.tcti, ['-c', 'o', '-p', 'owner-pw']);
    await tpm2ok('flushcontext', d.tcti, [s]);
    expect((await tpm2ok('getcap', d.tcti, ['handles-saved-session'])).stdout.trim()).toBe('');
  });
});
