// Request bodies for one batch of notifications: CloudEvents (the SDK builds and validates each
// event; one event is structured mode, several are the batched content mode — an array of
// structured events) or a Slack incoming-webhook message (one line per notification).
import { CloudEvent, HTTP } from 'cloudevents';
import type { Notification } from './types.ts';

export type NotifyFormat = 'cloudevents' | 'slack';

export interface Envelope {
  notification: Notification;
  /** Unique per notification (the CloudEvents id; a retry sends the same id). */
  id: string;
  time: string;
}

export interface Body {
  contentType: string;
  body: string;
}

/** The CloudEvents `type` of a notification: `dev.kttl.object.deleted`, … */
export function eventType(n: Notification): string {
  return `dev.kttl.${n.type}`;
}

export function render(format: NotifyFormat, source: string, batch: readonly Envelope[]): Body {
  return format === 'slack' ? slack(batch) : cloudevents(source, batch);
}

function cloudevents(source: string, batch: readonly Envelope[]): Body {
  const events = batch.map(
    (e) =>
      new CloudEvent({
        id: e.id,
        type: eventType(e.notification),
        source,
        subject: e.notification.subject,
        time: e.time,
        datacontenttype: 'application/json',
        data: e.notification.data,
      }),
  );
  if (events.length === 1) {
    const m = HTTP.structured(events[0]!);
    return { contentType: String(m.headers['content-type']), body: String(m.body) };
  }
  return {
    contentType: 'application/cloudevents-batch+json; charset=utf-8',
    body: JSON.stringify(events.map((e) => e.toJSON())),
  };
}

const SLACK_TITLES: Record<Notification['type'], string> = {
  'object.deleted': 'deleted',
  'deletion.scheduled': 'will delete',
  'ttl.invalid': 'invalid TTL, kept',
  'brake.tripped': 'DELETIONS PAUSED',
  'archive.failed': 'archive failed',
};

function slack(batch: readonly Envelope[]): Body {
  const lines = batch.map((e) => {
    const n = e.notification;
    const d = n.data as Record<string, unknown>;
    const what =
      typeof d.kind === 'string' ? `${d.kind} ${d.namespace ? `${d.namespace}/` : ''}${d.name}` : n.subject;
    const detail =
      n.type === 'object.deleted'
        ? d.rule
        : n.type === 'deletion.scheduled'
          ? `at ${d.expireAt}: ${d.rule}`
          : (d.message ?? '');
    return `• *kttl ${SLACK_TITLES[n.type]}* ${slackEscape(String(what))}: ${slackEscape(String(detail))}`;
  });
  return { contentType: 'application/json', body: JSON.stringify({ text: lines.join('\n') }) };
}

/** Slack's mrkdwn escapes: &, <, >. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
