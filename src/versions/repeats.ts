/**
 * Notifications this process converted a moment ago, or is converting now. S3 and SQS deliver at
 * least once: a repeat of a notification that reaches the same task is answered here without a
 * single AWS call, and a burst of identical ones waits for the first instead of converting side by
 * side. A repeat is the same notification, not merely the same ETag: uploading X, then Y, then X
 * again gives three notifications (their sequencers, or event times, differ), and the third is
 * converted, so the outputs end on X.
 */
import { normalizeEtag } from './metadata.js';

/** What makes one notification of an object version different from the next upload of it. */
export interface NotificationIdentity {
  bucket: string;
  key: string;
  etag: string;
  /** S3's per-key event order; absent on moto and some hand-made notifications. */
  sequencer?: string;
  /** The event's time, used where there is no sequencer. */
  eventTime?: Date;
}

/** How a repeat check ended: `converted` means the outputs were published (or already held it). */
export type RepeatOutcome = 'converted' | 'not-converted';

export class RecentNotifications {
  readonly #pending = new Map<string, Promise<RepeatOutcome>>();
  /** Identity → when it stops counting as recent. A Map keeps insertion order: the oldest go first. */
  readonly #converted = new Map<string, number>();

  constructor(
    private readonly capacity = 10_000,
    private readonly ttlMs = 15 * 60_000,
  ) {}

  /** True when this exact notification was converted here within the last `ttlMs`. */
  wasConverted(identity: NotificationIdentity): boolean {
    const id = idOf(identity);
    const until = this.#converted.get(id);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#converted.delete(id);
    return false;
  }

  /** The conversion of this notification under way here, if any; it resolves to how it ended. */
  pending(identity: NotificationIdentity): Promise<RepeatOutcome> | undefined {
    return this.#pending.get(idOf(identity));
  }

  /** Follows a conversion of `identity` until it settles, remembering it if it converted. */
  track(identity: NotificationIdentity, work: Promise<RepeatOutcome>): void {
    const id = idOf(identity);
    const settled = work.catch((): RepeatOutcome => 'not-converted');
    this.#pending.set(id, settled);
    void settled.then((outcome) => {
      if (this.#pending.get(id) === settled) this.#pending.delete(id);
      if (outcome === 'converted') this.#remember(id);
    });
  }

  #remember(id: string): void {
    this.#converted.delete(id);
    this.#converted.set(id, Date.now() + this.ttlMs);
    while (this.#converted.size > this.capacity) this.#converted.delete(this.#converted.keys().next().value!);
  }
}

function idOf(identity: NotificationIdentity): string {
  const order = identity.sequencer ? `s:${identity.sequencer}` : identity.eventTime ? `t:${identity.eventTime.getTime()}` : '-';
  return `${identity.bucket}\n${identity.key}\n${normalizeEtag(identity.etag)}\n${order}`;
}
