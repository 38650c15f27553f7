// `kttl run`'s safety-rail flags (docs/operations.md "Safety rails"): parsers and the options they make.
import { InvalidArgumentError } from 'commander';
import type { SafetyRunOptions } from '../../controller/safety-app.ts';
import { notifyUrlError } from '../../notify/url.ts';
import { type DeletionLimit, parseDeletionLimit } from '../../rules/safety.ts';

export function parseMaxDeletions(value: string): DeletionLimit {
  const r = parseDeletionLimit(value);
  if (!r.ok) throw new InvalidArgumentError(r.error);
  return r.value;
}

/** Repeatable: each --notify-url adds a sink. */
export function parseNotifyUrl(value: string, previous: string[] | undefined): string[] {
  const e = notifyUrlError(value);
  if (e) throw new InvalidArgumentError(e);
  return [...(previous ?? []), value];
}

export interface NotifyFlags {
  notifyUrl?: string[];
  notifyFormat: 'cloudevents' | 'slack';
  notifyCaFile?: string;
  notifyTokenFile?: string;
  notifyHmacKeyFile?: string;
  notifyBatchMax: number;
}

export function notifyOptions(f: NotifyFlags): Pick<SafetyRunOptions, 'notify'> {
  if (!f.notifyUrl?.length) return {};
  return {
    notify: {
      urls: f.notifyUrl,
      format: f.notifyFormat,
      batchMax: f.notifyBatchMax,
      ...(f.notifyCaFile ? { caFile: f.notifyCaFile } : {}),
      ...(f.notifyTokenFile ? { tokenFile: f.notifyTokenFile } : {}),
      ...(f.notifyHmacKeyFile ? { hmacKeyFile: f.notifyHmacKeyFile } : {}),
    },
  };
}
