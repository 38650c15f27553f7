// Which objects the watch cache keeps (src/controller/controller.ts #ingest). Memory must scale
// with finished objects only: an unfinished object can be deleted by one rule alone,
// `kttl.dev/expires` (src/rules/expires.ts), so one without that annotation needs
// no summary at all — when an update shows it finished, the watch delivers the whole object and
// its summary is built then; when it vanishes unfinished, there was nothing to forget.
import { ANNOTATIONS, type ObjectSummary } from './types.ts';

/** Finished under the built-in rule or under any finish rule a policy gives its kind. */
export function finishedUnderAnyRule(obj: ObjectSummary): boolean {
  if (obj.finish !== null) return true;
  if (obj.finishes) for (const f of Object.values(obj.finishes)) if (f !== null) return true;
  return false;
}

/**
 * Whether a summary is worth keeping: finished, or unfinished with a `kttl.dev/expires` (valid or
 * not: src/rules/verdict.ts judges an unfinished object by that annotation alone, and a bad one
 * gets its Warning while the object runs).
 */
export function worthCaching(obj: ObjectSummary): boolean {
  return finishedUnderAnyRule(obj) || Object.hasOwn(obj.annotations, ANNOTATIONS.expires);
}
