/**
 * Dictionary-attack protection (Part 1 §19.8; ms-tpm DA.c). The counters and parameters are
 * persistent; the self-healing timers count TPM time and restart at every Startup, as in the
 * reference built without ACCUMULATE_SELF_HEAL_TIMER.
 *
 * One deliberate difference from libtpms: the first DA-protected authorization after Startup
 * is not answered with TPM_RC_RETRY. libtpms does that to get its "DA used" mark into NV before
 * it evaluates the authorization; here every change is persisted before any response leaves
 * (device/), so the mark is recorded in the same command.
 */
import { TPM_RC, TPM_RH } from '../constants.js';
import { TpmError } from '../errors.js';
import type { PersistentState } from './persistent.js';

export interface DaPersistent {
  failedTries: number;
  maxTries: number;
  /** Seconds per failedTries decrement; 0 disables DA protection. */
  recoveryTime: number;
  /** Seconds lockoutAuth stays disabled after a failure; 0 means until the next Startup. */
  lockoutRecovery: number;
  lockoutAuthEnabled: boolean;
  /** A DA-protected authorization happened since the last Startup or Shutdown (ms-tpm SU_DA_USED). */
  daUsed: boolean;
}

/** libtpms DAPreInstall_Init: 3 tries, 1000 s recovery, 1000 s lockout recovery. */
export function manufactureDa(): DaPersistent {
  return { failedTries: 0, maxTries: 3, recoveryTime: 1000, lockoutRecovery: 1000, lockoutAuthEnabled: true, daUsed: false };
}

/** The DA state of a permanent state, created with the defaults for states written before it existed. */
export function daOf(p: PersistentState): DaPersistent {
  p.da ??= manufactureDa();
  return p.da;
}

export class DictionaryAttack {
  /** TPM time (ms) of the last failure for ordinary entities and for lockoutAuth. */
  private selfHealTimer = 0n;
  private lockoutTimer = 0n;

  /**
   * ms-tpm DAStartup: timers restart; lockoutAuth comes back when lockoutRecovery is 0; after
   * a shutdown that was not orderly, failedTries counts one more if DA was used (the
   * authorization that may have failed without its count reaching NV).
   * Returns whether the persistent state changed.
   */
  startup(p: PersistentState, prevOrderly: boolean): boolean {
    const da = daOf(p);
    this.selfHealTimer = 0n;
    this.lockoutTimer = 0n;
    let changed = false;
    if (da.lockoutRecovery === 0 && !da.lockoutAuthEnabled) {
      da.lockoutAuthEnabled = true;
      changed = true;
    }
    if (da.recoveryTime !== 0 && da.failedTries < da.maxTries && !prevOrderly && da.daUsed) {
      da.failedTries += 1;
      changed = true;
    }
    if (da.daUsed) {
      da.daUsed = false;
      changed = true;
    }
    return changed;
  }

  /** ms-tpm DASelfHeal at TPM time `now` (ms). Returns whether the persistent state changed. */
  selfHeal(p: PersistentState, now: bigint): boolean {
    const da = daOf(p);
    let changed = false;
    if (da.failedTries !== 0) {
      if (da.recoveryTime === 0) {
        da.failedTries = 0;
        changed = true;
      } else {
        const step = BigInt(da.recoveryTime) * 1000n;
        const decrease = (now - this.selfHealTimer) / step;
        if (decrease > 0n) {
          da.failedTries = decrease >= BigInt(da.failedTries) ? 0 : da.failedTries - Number(decrease);
          this.selfHealTimer += decrease * step;
          changed = true;
        }
      }
    }
    if (!da.lockoutAuthEnabled && da.lockoutRecovery !== 0 && now - this.lockoutTimer >= BigInt(da.lockoutRecovery) * 1000n) {
      da.lockoutAuthEnabled = true;
      changed = true;
    }
    return changed;
  }

  /**
   * ms-tpm CheckLockedOut before a DA-protected authorization: lockoutAuth while its use is
   * disabled, anything else while failedTries has reached maxTries, is TPM_RC_LOCKOUT.
   * Records that DA was used. Returns whether the persistent state changed.
   */
  checkLockedOut(p: PersistentState, lockout: boolean): boolean {
    const da = daOf(p);
    if (lockout) {
      if (!da.lockoutAuthEnabled) throw new TpmError(TPM_RC.LOCKOUT);
      return false;
    }
    if (da.failedTries >= da.maxTries) throw new TpmError(TPM_RC.LOCKOUT);
    if (da.daUsed) return false;
    da.daUsed = true;
    // As libtpms overwrites orderlyState with SU_DA_USED: a power loss from here on is not orderly.
    p.orderly = 'NONE';
    return true;
  }

  /** ms-tpm IncrementLockout's DA part after a failed authorization of `handle` at TPM time `now`. */
  registerFailure(p: PersistentState, handle: number, now: bigint): void {
    const da = daOf(p);
    if (handle === TPM_RH.LOCKOUT) {
      da.lockoutAuthEnabled = false;
      this.lockoutTimer = now;
    } else {
      if (da.recoveryTime !== 0) da.failedTries += 1;
      this.selfHealTimer = now;
    }
  }

  /** TPMA_PERMANENT.inLockout. */
  inLockout(p: PersistentState): boolean {
    const da = daOf(p);
    return da.failedTries >= da.maxTries;
  }
}
