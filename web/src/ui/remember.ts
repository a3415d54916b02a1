//! "Remember my name in this browser" on the landing page: off unless ticked; a
//! remembered name fills the form next time and can be forgotten there.

import { rememberName, rememberedName } from '../prefs';
import { h } from './dom';

export interface RememberField {
  readonly element: HTMLElement;
  /** On submit: remembers `name` if ticked, else forgets any remembered name. */
  submitted(name: string): void;
}

export function rememberNameField(input: HTMLInputElement): RememberField {
  const remembered = rememberedName();
  if (remembered !== null && input.value === '') input.value = remembered;
  const checkbox = h('input', { attrs: { type: 'checkbox', id: 'remember-name', checked: remembered !== null } });
  const status = h('span', { class: 'remember-status', attrs: { role: 'status' } });
  const forget = h('button', {
    class: 'link-button', attrs: { type: 'button', hidden: remembered === null, 'aria-label': 'Forget it: stop remembering my name' }, text: 'Forget it',
    on: {
      click: () => {
        rememberName(null);
        checkbox.checked = false;
        input.value = '';
        forget.hidden = true;
        status.textContent = 'Your name is no longer remembered in this browser.';
        input.focus();
      },
    },
  });
  const element = h('div', { class: 'remember' },
    checkbox,
    h('label', { attrs: { for: 'remember-name' }, text: 'Remember my name in this browser' }),
    forget,
    status);
  return {
    element,
    submitted: (name) => {
      if (checkbox.checked) rememberName(name);
      else if (rememberedName() !== null) rememberName(null);
    },
  };
}
