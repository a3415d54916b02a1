//! Settings this browser keeps: what desktop notifications show (full text, the sender's
//! name only, or nothing), shown under the online list.

import { type NotificationPrivacy, notificationPrivacy, setNotificationPrivacy } from '../prefs';
import { h } from './dom';

const CHOICES: readonly { readonly value: NotificationPrivacy; readonly label: string }[] = [
  { value: 'full', label: 'Name and message' },
  { value: 'name', label: 'Name only' },
  { value: 'nothing', label: 'Nothing (just “New message”)' },
];

export function notificationSettings(): HTMLElement {
  const current = notificationPrivacy();
  const saved = h('p', { class: 'hint', attrs: { role: 'status' } });
  return h('fieldset', { class: 'settings' },
    h('legend', { text: 'Notifications show' }),
    ...CHOICES.map(({ value, label }) => {
      const input = h('input', {
        attrs: { type: 'radio', name: 'notification-privacy', value, id: `notify-${value}`, checked: value === current },
        on: {
          change: () => {
            const stored = setNotificationPrivacy(value);
            saved.textContent = stored ? 'Saved in this browser.' : 'This browser does not let the page save it: it applies until you close the tab.';
          },
        },
      });
      return h('div', { class: 'choice' }, input, h('label', { attrs: { for: `notify-${value}` }, text: label }));
    }),
    h('p', { class: 'hint', text: 'Notifications leave the page: your system may show them on the lock screen and keep them. Name only is the default.' }),
    saved);
}
