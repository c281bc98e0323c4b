/** Part 3 §10 Testing: self-tests run known answers through the crypto layer. */
import { command } from '../command.js';
import { HASH_ALGS, isImplementedAlg } from '../algorithms.js';
import { TPM_ALG, TPM_CC, TPM_RC } from '../constants.js';
import { hash, hmac } from '../crypto/index.js';
import { TpmError } from '../errors.js';
import { BOOL, UINT32 } from '../marshal/codec.js';
import { TPM2B_MAX_BUFFER, TPML_ALG } from '../marshal/structures.js';
import type { Tpm } from '../tpm.js';

/** FIPS 180-4 example digests of "abc": a wrong hash implementation fails here, not in a quote. */
const ABC_DIGESTS: ReadonlyMap<number, string> = new Map([
  [TPM_ALG.SHA1, 'a9993e364706816aba3e25717850c26c9cd0d89d'],
  [TPM_ALG.SHA256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  [TPM_ALG.SHA384, 'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7'],
  [TPM_ALG.SHA512, 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f'],
]);

/** RFC 4231 test case 2 (key "Jefe"), HMAC-SHA-256. */
const HMAC_KAT = {
  key: new TextEncoder().encode('Jefe'),
  data: new TextEncoder().encode('what do ya want for nothing?'),
  mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const abc = new TextEncoder().encode('abc');

/** Runs the known-answer tests of the given algorithms; a failure is TPM_RC_FAILURE. */
function runSelfTests(tpm: Tpm, algs: Iterable<number>): void {
  for (const alg of algs) {
    const expected = ABC_DIGESTS.get(alg);
    if (expected && hex(hash(alg, abc)) !== expected) {
      tpm.env.log(`self-test of hash 0x${alg.toString(16)} failed`);
      throw new TpmError(TPM_RC.FAILURE);
    }
    if (alg === TPM_ALG.HMAC && hex(hmac(TPM_ALG.SHA256, HMAC_KAT.key, HMAC_KAT.data)) !== HMAC_KAT.mac) {
      tpm.env.log('self-test of HMAC failed');
      throw new TpmError(TPM_RC.FAILURE);
    }
  }
}

/** Algorithms that have a self-test: the hashes and HMAC. */
const TESTABLE = [...HASH_ALGS.map((h) => h.alg), TPM_ALG.HMAC];

/** Part 3 §10.2 TPM2_SelfTest: every test runs at once; fullTest changes nothing. */
export const SelfTest = command({
  code: TPM_CC.SelfTest,
  handles: [],
  params: { fullTest: BOOL },
  response: {},
  nv: true,
  run(tpm) {
    runSelfTests(tpm, TESTABLE);
    tpm.selfTestDone = true;
    return {};
  },
});

/**
 * Part 3 §10.3 TPM2_IncrementalSelfTest: tests the listed algorithms and returns what still
 * needs testing (nothing: tests are quick enough to run at once).
 * RCs: TPM_RC_VALUE+P1 (an algorithm that is not implemented).
 */
export const IncrementalSelfTest = command({
  code: TPM_CC.IncrementalSelfTest,
  handles: [],
  params: { toTest: TPML_ALG },
  response: { toDoList: TPML_ALG },
  nv: true,
  run(tpm, _h, { toTest }) {
    for (const alg of toTest) {
      if (!isImplementedAlg(alg)) throw new TpmError(TPM_RC.VALUE, { param: 1 });
    }
    runSelfTests(tpm, toTest);
    return { toDoList: [] };
  },
});

/** Part 3 §10.4 TPM2_GetTestResult: no vendor data; the result of the tests so far. */
export const GetTestResult = command({
  code: TPM_CC.GetTestResult,
  handles: [],
  params: {},
  response: { outData: TPM2B_MAX_BUFFER, testResult: UINT32 },
  run() {
    return { outData: new Uint8Array(0), testResult: TPM_RC.SUCCESS };
  },
});

