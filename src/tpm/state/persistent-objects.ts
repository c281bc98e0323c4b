/**
 * Persistent objects (Part 1 §37.5, Part 3 §28.5 EvictControl): copies of loaded objects kept in
 * NV under a handle 0x81xxxxxx, part of the permanent state.
 */
import { HR } from '../constants.js';
import type { KeyObject } from './objects.js';

/** Handle → object; the permanent state serialises it as a map. */
export type PersistentObjects = Map<number, KeyObject>;

/** Part 2 §7.5: the owner's persistent range, then the platform's. */
export const PERSISTENT_FIRST = HR.PERSISTENT;
export const PLATFORM_PERSISTENT = HR.PERSISTENT + 0x800000;
export const PERSISTENT_LAST = HR.PERSISTENT + 0xffffff;

export const isOwnerPersistent = (h: number): boolean => h >= PERSISTENT_FIRST && h < PLATFORM_PERSISTENT;
export const isPlatformPersistent = (h: number): boolean => h >= PLATFORM_PERSISTENT && h <= PERSISTENT_LAST;

/** Part 2 TPM_PT_HR_PERSISTENT_MIN: libtpms' MIN_EVICT_OBJECTS (PC Client profile). */
export const MIN_EVICT_OBJECTS = 7;
