//! Getting a person's attention while the tab is in the background: an unread count in
//! the tab title and, if they allowed it with a click (never asked on load), a desktop
//! notification. Both stop as soon as the tab is visible again.

import { tabTitle } from '../format';
import { notificationContent, notificationPrivacy } from '../prefs';

export class Attention {
  #unread = 0;
  readonly #baseTitle: string;
  #lastNotification: Notification | null = null;
  /** Set while a mention waits to be seen: the window's focus listener that clears it. */
  #mentioned: (() => void) | null = null;
  #mentionNotification: Notification | null = null;

  constructor(baseTitle = 'StreamChat') {
    this.#baseTitle = baseTitle;
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.#reset();
    });
    document.title = tabTitle(0, this.#baseTitle);
  }

  /** Whether the browser can show notifications and the person has not decided yet. */
  static canAsk(): boolean {
    return 'Notification' in window && Notification.permission === 'default';
  }

  static get enabled(): boolean {
    return 'Notification' in window && Notification.permission === 'granted';
  }

  /** Asks for permission; must be called from a click. */
  static async ask(): Promise<NotificationPermission> {
    if (!('Notification' in window)) return 'denied';
    return Notification.requestPermission();
  }

  /** A message from someone else arrived. */
  message(from: string, text: string): void {
    if (document.visibilityState === 'visible') return;
    this.#unread++;
    document.title = tabTitle(this.#unread, this.#mentioned === null ? this.#baseTitle : `@ ${this.#baseTitle}`);
    if (!Attention.enabled) return;
    this.#lastNotification?.close();
    // What it shows is this browser's choice (prefs.ts): by default the name, not the text.
    const { title, body } = notificationContent(notificationPrivacy(), from, text);
    // A fixed tag replaces the previous notification instead of stacking dozens.
    const notification = new Notification(title, { body, tag: 'streamchat-message', silent: false });
    notification.addEventListener('click', () => {
      window.focus();
      notification.close();
    });
    this.#lastNotification = notification;
  }

  /**
   * A message that mentions this person (`@name`). Noticed more than other messages:
   * also while the tab is visible but the window is not in front, with a notification of
   * its own that later messages do not replace, and "@" in the tab title.
   */
  mention(from: string, text: string): void {
    if (document.visibilityState === 'visible' && document.hasFocus()) return;
    if (this.#mentioned === null) {
      // Looking at the window again (not only showing the tab) is seeing the mention.
      this.#mentioned = () => this.#reset();
      window.addEventListener('focus', this.#mentioned);
    }
    this.#unread++;
    document.title = tabTitle(this.#unread, `@ ${this.#baseTitle}`);
    if (!Attention.enabled) return;
    this.#mentionNotification?.close();
    // The same privacy choice as for other messages: with "nothing", not even who.
    const privacy = notificationPrivacy();
    const { body } = notificationContent(privacy, from, text);
    const title = privacy === 'nothing' ? 'StreamChat' : `${from} mentioned you — StreamChat`;
    const notification = new Notification(title, { body, tag: 'streamchat-mention', silent: false });
    notification.addEventListener('click', () => {
      window.focus();
      notification.close();
    });
    this.#mentionNotification = notification;
  }

  #reset(): void {
    if (this.#mentioned !== null) window.removeEventListener('focus', this.#mentioned);
    this.#mentioned = null;
    this.#mentionNotification?.close();
    this.#mentionNotification = null;
    this.#unread = 0;
    document.title = tabTitle(0, this.#baseTitle);
    this.#lastNotification?.close();
    this.#lastNotification = null;
  }
}
