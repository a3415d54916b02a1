//! Entry point: checks that the browser can do end-to-end encryption here (a secure
//! context with WebCrypto), then shows the landing page or, for an invite link, asks for
//! a name and opens the room. The room secret lives only in the URL fragment and memory.

import './style.css';
import './ui/room-features.css';
import { type RoomKind, newRoomSecret, roomFragment, roomFromFragment } from './crypto';
import type { Bytes } from './encoding';
import { RoomSession } from './room';
import { ChatView } from './ui/chat';
import { replaceChildren } from './ui/dom';
import { FileSharing } from './ui/files';
import { cannotRun, leftPage, nameForm } from './ui/landing';
import { NobodyHere } from './ui/nobody';
import { refreshMarks, trustAlertItem, trustMembers } from './ui/trust';

function app(): HTMLElement {
  const root = document.getElementById('app');
  if (root === null) throw new Error('index.html lacks #app');
  return root;
}

function show(page: HTMLElement): void {
  replaceChildren(app(), page);
}

function start(): void {
  if (!window.isSecureContext || typeof crypto === 'undefined' || crypto.subtle === undefined) {
    show(cannotRun(
      'This page needs a secure connection',
      'StreamChat encrypts everything in your browser with WebCrypto, which browsers only offer to secure pages: HTTPS, or http://localhost for testing.',
      `This page was opened over ${window.location.protocol.replace(':', '')} at ${window.location.host}, so it cannot encrypt, and it will not send anything unencrypted. Ask whoever runs this server to serve it over HTTPS.`,
    ));
    return;
  }
  const fragment = window.location.hash;
  if (fragment.length <= 1) {
    show(nameForm({ invited: false, submit: (name, kind) => {
      const secret = newRoomSecret();
      // replaceState: the secret goes into the address bar (to copy) without a history entry.
      history.replaceState(null, '', `#${roomFragment(secret, kind)}`);
      void enter(secret, kind, name);
    } }));
    return;
  }
  const room = roomFromFragment(fragment);
  if (room === null) {
    show(nameForm({
      invited: false,
      problem: 'This invite link is incomplete or damaged. Ask for it again, or create a new room.',
      submit: (name, kind) => {
        const fresh = newRoomSecret();
        history.replaceState(null, '', `#${roomFragment(fresh, kind)}`);
        void enter(fresh, kind, name);
      },
    }));
    return;
  }
  show(nameForm({ invited: true, kind: room.kind, submit: (name) => void enter(room.secret, room.kind, name, true) }));
}

async function enter(secret: Bytes, kind: RoomKind, name: string, invited = false): Promise<void> {
  let session: RoomSession | null = null;
  const view = new ChatView({
    left: () => {
      window.removeEventListener('pagehide', onPageHide);
      show(leftPage(() => window.location.reload(), () => {
        history.replaceState(null, '', window.location.pathname);
        window.location.reload();
      }));
    },
  });
  const files = new FileSharing(view);
  const nobody = new NobodyHere(view, invited);
  let trustAlerts = 0;
  const onPageHide = (): void => session?.leaveNow();
  try {
    session = await RoomSession.open({ secret, name, kind }, {
      connection: (state) => { view.connection(state); files.connection(state); },
      members: (members) => {
        const alerts = trustMembers(members);
        view.members(members);
        refreshMarks(view.root);
        for (const alert of alerts) view.addElement(`trust-${++trustAlerts}`, trustAlertItem(alert, `trust-${trustAlerts}`), null);
        nobody.members(members);
      },
      added: (item) => view.added(item),
      updated: (item) => view.updated(item),
      typing: (text, names) => view.typing(text, names),
      file: (event) => files.handle(event),
      lobby: (lobby) => view.lobby(lobby),
    });
  } catch (e: unknown) {
    show(cannotRun(
      'This browser cannot run StreamChat',
      'It lacks a cryptographic function StreamChat needs (Ed25519 signatures in WebCrypto). Recent versions of Chrome, Edge, Firefox and Safari have it.',
      `Details: ${e instanceof Error ? e.message : String(e)}`,
    ));
    return;
  }
  view.attach(session);
  files.attach(session);
  window.addEventListener('pagehide', onPageHide);
  show(view.root);
  view.focusComposer();
}

// Opening another invite link in this tab means another room: start over cleanly.
window.addEventListener('hashchange', () => window.location.reload());
start();
