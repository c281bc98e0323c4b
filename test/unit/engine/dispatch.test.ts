/**
 * Command framing, handle and authorization areas, and the failure boundary (Part 3 §5).
 * Expected codes were checked against libtpms 0.9 (Debian's swtpm) for the same bytes.
 */
import { describe, expect, test } from 'vitest';
import { TPM_CC, TPM_RC, TPM_ST } from '../../../src/tpm/constants.js';
import { Engine } from '../../../src/tpm/engine.js';
import { be, buildCommand, cat, createTestTpm, hex, parseResponse, seededRandom, unhex } from '../../helpers/engine.js';

const EXTEND_16 = cat(be.u32(1), be.u16(0x000b), new Uint8Array(32).fill(0x11));

describe('header', () => {
  const t = createTestTpm();
  test.each([
    ['too short for a tag', '80', TPM_RC.INSUFFICIENT],
    ['size field says 10 but a parameter is missing', '80010000000a0000017b', 0x1da],
    ['size field larger than the command', '80010000000e0000017b0008', TPM_RC.COMMAND_SIZE],
    ['size field smaller than the command', '80010000000b0000017b0008', TPM_RC.COMMAND_SIZE],
    ['tag that is no TPM_ST', '12340000000c0000017b0008', TPM_RC.VALUE],
    ['structure tag that is no command tag', '80000000000c0000017b0008', TPM_RC.BAD_TAG],
    ['unknown command code', '80010000000a00000999', TPM_RC.COMMAND_CODE],
    ['vendor command code', '80010000000a20000000', TPM_RC.COMMAND_CODE],
    ['Startup when already started', '80010000000c000001440000', TPM_RC.INITIALIZE],
    ['a trailing byte after the parameters', '80010000000d0000017b000800', TPM_RC.SIZE],
  ])('%s', (_name, bytes, rc) => {
    const r = t.send(unhex(bytes));
    expect(r.rc).toBe(rc);
    // Errors are always 10 bytes with TPM_ST_NO_SESSIONS (Part 3 §5.1).
    expect(hex(r.bytes)).toBe('8001' + '0000000a' + rc.toString(16).padStart(8, '0'));
  });

  test('a command over the buffer size is TPM_RC_COMMAND_SIZE', () => {
    const big = buildCommand(TPM_CC.StirRandom, { params: cat(be.u16(4096), new Uint8Array(4096)) });
    expect(t.send(big).rc).toBe(TPM_RC.COMMAND_SIZE);
  });
});

describe('before Startup', () => {
  test('every command but Startup is TPM_RC_INITIALIZE', () => {
    const t = createTestTpm({ started: false });
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(TPM_RC.INITIALIZE);
    expect(t.call(TPM_CC.ReadClock).rc).toBe(TPM_RC.INITIALIZE);
    expect(t.call(TPM_CC.Startup, { params: be.u16(0) }).rc).toBe(0);
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(0);
  });

  test('an unknown command is still TPM_RC_COMMAND_CODE', () => {
    const t = createTestTpm({ started: false });
    expect(t.send(unhex('80010000000a00000999')).rc).toBe(TPM_RC.COMMAND_CODE);
  });
});

describe('authorization area', () => {
  const t = createTestTpm();
  const send = (auth: string) => {
    const bytes = unhex('8002' + '00000000' + '00000182' + '00000010' + auth + hex(EXTEND_16));
    new DataView(bytes.buffer).setUint32(2, bytes.length);
    return t.send(bytes);
  };
  const pw = (password = '', attrs = '01') => '40000009' + '0000' + attrs + be2(password);
  const be2 = (h: string) => (h.length / 2).toString(16).padStart(4, '0') + h;
  const area = (...sessions: string[]) => {
    const body = sessions.join('');
    return (body.length / 2).toString(16).padStart(8, '0') + body;
  };

  test('a good password session answers with an empty nonce and hmac and continueSession', () => {
    const r = send(area(pw()));
    expect(r.rc).toBe(0);
    expect(r.tag).toBe(TPM_ST.SESSIONS);
    // parameterSize 0, then nonce size 0, attributes 0x01, hmac size 0.
    expect(hex(r.body)).toBe('00000000' + '0000' + '01' + '0000');
  });

  test('trailing zeros of a password do not matter', () => {
    expect(send(area(pw('0000'))).rc).toBe(0);
  });

  test.each([
    ['no sessions for an auth handle', 'noarea', TPM_RC.AUTH_MISSING],
    ['authorization size below 9', '00000008' + '4000000900000100', TPM_RC.SIZE],
    ['authorization size past the end', '00000100' + pw(), TPM_RC.SIZE],
    ['a wrong password (PCR: exempt from DA)', area(pw('6161')), 0x9a2],
    ['a nonce in a password session', area('40000009' + '000100' + '01' + '0000'), 0x98f],
    ['encrypt on a password session', area(pw('', '41')), 0x982],
    ['audit on a password session', area(pw('', '81')), 0x982],
    ['a second password session with no handle to authorize', area(pw(), pw()), 0xa8b],
    ['four sessions', area(pw(), pw(), pw(), pw()), 0xc95],
    ['an HMAC session that is not loaded', area('02000000' + '0000' + '01' + '0000'), 0x918],
    ['a session handle of the wrong type', area('01000000' + '0000' + '01' + '0000'), 0x984],
    ['an hmac over the digest size', area('40000009' + '0000' + '01' + '0041' + '00'.repeat(65)), 0x995],
  ])('%s', (_name, auth, rc) => {
    if (auth === 'noarea') {
      const bytes = buildCommand(TPM_CC.PCR_Extend, { handles: [16], params: EXTEND_16 });
      expect(t.send(bytes).rc).toBe(rc);
      return;
    }
    expect(send(auth).rc).toBe(rc);
  });

  test('Startup takes no authorization area at all', () => {
    const u = createTestTpm({ started: false });
    const r = u.call(TPM_CC.Startup, { params: be.u16(0), passwords: [''] });
    expect(r.rc).toBe(TPM_RC.AUTH_CONTEXT);
  });
});

describe('failure boundary', () => {
  test('an exception that is not a TpmError becomes TPM_RC_FAILURE and a log line; the TPM keeps serving', () => {
    const t = createTestTpm();
    const seq = t.call(TPM_CC.HashSequenceStart, { params: cat(be.u16(0), be.u16(0x000b)) });
    const handle = new DataView(seq.body.buffer, seq.body.byteOffset).getUint32(0);
    // Break the sequence object from outside, as a bug would.
    const object = t.engine.tpm.objects.get(handle)!;
    if (object.kind === 'key') throw new Error('expected a sequence');
    (object.states as Map<number, unknown>).set(0x000b, null);
    const r = t.call(TPM_CC.SequenceUpdate, { handles: [handle], passwords: [''], params: be.u16(0) });
    expect(r.rc).toBe(TPM_RC.FAILURE);
    expect(t.env.logs.join('\n')).toMatch(/internal error in command 0x15c/);
    expect(t.call(TPM_CC.GetRandom, { params: be.u16(8) }).rc).toBe(0);
  });
});

describe('persistent state', () => {
  test('a TPM restored from its blob keeps its seeds and answers the same', () => {
    const env = { random: seededRandom('restore'), now: () => 0, log: () => undefined };
    const a = Engine.manufacture(env);
    const blob = a.takePermanentChanges();
    expect(blob).not.toBeNull();
    expect(a.takePermanentChanges()).toBeNull();
    const b = Engine.restore(blob!, env);
    expect(b.tpm.persistent.eps).toEqual(a.tpm.persistent.eps);
    expect(b.tpm.persistent.pcrAllocation).toEqual(a.tpm.persistent.pcrAllocation);
  });

  test('a corrupt or truncated blob is refused with a StateFormatError', () => {
    const blob = Engine.manufacture().permanentBlob();
    expect(() => Engine.restore(blob.subarray(0, 8))).toThrow(/truncated/);
    const bad = blob.slice();
    bad[0] = 0;
    expect(() => Engine.restore(bad)).toThrow(/header/);
    const newer = blob.slice();
    new DataView(newer.buffer).setUint16(8, 99);
    expect(() => Engine.restore(newer)).toThrow(/format version 99/);
    const body = blob.slice(0, blob.length - 5);
    expect(() => Engine.restore(body)).toThrow(/corrupt/);
  });

  test('a parsed response round-trips through parseResponse', () => {
    const t = createTestTpm();
    const r = parseResponse(t.engine.execute(buildCommand(TPM_CC.GetRandom, { params: be.u16(4) }), 0));
    expect(r.size).toBe(16);
  });
});
