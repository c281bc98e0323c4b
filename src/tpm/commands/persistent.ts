/**
 * Part 3 §28.5 TPM2_EvictControl: makes a loaded object persistent under a handle 0x81xxxxxx, or
 * removes a persistent object. Persistent objects live in the permanent state, so they survive
 * restarts and TPM Resets.
 */
import { command } from '../command.js';
import { TPM_CC, TPM_HT, TPM_RC, TPM_RH } from '../constants.js';
import { TpmError } from '../errors.js';
import { TPMI_DH_OBJECT, TPMI_DH_PERSISTENT, TPMI_RH_PROVISION } from '../marshal/tpmi.js';
import { nvPersistentAvail } from '../state/nv.js';
import { isStClear } from '../state/objects.js';
import { isOwnerPersistent, isPlatformPersistent } from '../state/persistent-objects.js';

/**
 * RCs, in the reference's order: TPM_RC_ATTRIBUTES+H2 (an object of the NULL hierarchy, a
 * LoadExternal object, a public-only object, an object with stClear or below one, a sequence), TPM_RC_HANDLE+H2 (a
 * persistent object named with another persistentHandle), TPM_RC_HIERARCHY+H2 (platformAuth
 * persisting an object outside the platform hierarchy, ownerAuth touching a platform object),
 * TPM_RC_RANGE+P1 (a handle outside the authorizing hierarchy's range), TPM_RC_NV_DEFINED (the
 * handle is taken), TPM_RC_NV_SPACE (no room for another persistent object).
 */
export const EvictControl = command({
  code: TPM_CC.EvictControl,
  handles: [
    { name: 'auth', type: TPMI_RH_PROVISION, auth: 'USER' },
    { name: 'objectHandle', type: TPMI_DH_OBJECT },
  ],
  params: { persistentHandle: TPMI_DH_PERSISTENT },
  response: {},
  nv: true,
  run(tpm, { auth, objectHandle }, { persistentHandle }) {
    const object = tpm.keyObject(objectHandle);
    if (!object || object.hierarchy === TPM_RH.NULL || object.external || object.publicOnly || isStClear(object)) {
      throw new TpmError(TPM_RC.ATTRIBUTES, { handle: 2 });
    }
    const evict = objectHandle >>> 24 === TPM_HT.PERSISTENT;
    if (evict && objectHandle !== persistentHandle) throw new TpmError(TPM_RC.HANDLE, { handle: 2 });
    const platformObject = object.hierarchy === TPM_RH.PLATFORM;
    if (auth === TPM_RH.PLATFORM) {
      // platformAuth may remove any persistent object, but persists only its own.
      if (!evict) {
        if (!platformObject) throw new TpmError(TPM_RC.HIERARCHY, { handle: 2 });
        if (!isPlatformPersistent(persistentHandle)) throw new TpmError(TPM_RC.RANGE, { param: 1 });
      }
    } else {
      if (platformObject) throw new TpmError(TPM_RC.HIERARCHY, { handle: 2 });
      if (!evict && !isOwnerPersistent(persistentHandle)) throw new TpmError(TPM_RC.RANGE, { param: 1 });
    }
    const store = tpm.persistent.objects;
    if (evict) {
      store.delete(persistentHandle);
    } else {
      if (store.has(persistentHandle)) throw new TpmError(TPM_RC.NV_DEFINED);
      // Persistent objects share the NV budget with NV indices (libtpms: 65 on a fresh TPM).
      if (nvPersistentAvail(tpm) === 0) throw new TpmError(TPM_RC.NV_SPACE);
      store.set(persistentHandle, object);
    }
    tpm.markDirty();
    return {};
  },
});
