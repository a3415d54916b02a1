//! Encrypted file sharing in the chat (placeholder until the file-transfer issue).

import type { ConnectionState } from '../connection';
import type { FileEvent, RoomSession } from '../room';
import type { ChatView } from './chat';

export class FileSharing {
  readonly #view: ChatView;
  #session: RoomSession | null = null;

  constructor(view: ChatView) {
    this.#view = view;
  }

  attach(session: RoomSession): void {
    this.#session = session;
  }

  connection(state: ConnectionState): void {
    void state;
  }

  handle(event: FileEvent): void {
    void event;
    void this.#view;
    void this.#session;
  }
}
