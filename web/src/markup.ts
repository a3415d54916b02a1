//! Light formatting of a message, as people write it in other chats: **bold**, _italic_
//! (or *italic*), `code`, ``` code blocks ```, http(s) links found in the text, and
//! @mentions of the people in the room. A pure parser into a small tree; the UI turns the
//! tree into elements with DOM calls, every piece of text as a text node (never markup),
//! so a message can only ever become these few elements. Links are never fetched.
//!
//! Rules, kept simple and predictable:
//! - Code first: inside `code` and ``` blocks nothing else is read. An unclosed marker is
//!   plain text. Inline code stays on one line.
//! - Links: `http://` or `https://` after a non-word character, up to a space; trailing
//!   punctuation (and a `)` or `]` without its opening one) is left out. No other scheme
//!   is ever a link (`javascript:`, `data:`, …).
//! - `**`, `*` and `_` mark emphasis only at word edges: an opening marker follows the
//!   start, a space or punctuation and precedes a non-space; a closing one the reverse.
//!   So `snake_case`, `2*3*4` and `a * b` stay as written. Markers pair with the nearest
//!   opening one of their kind; pairs nest (`**bold _and italic_**`) and never cross.
//! - A mention is `@` and a name of the room (longest first, any case), ending at a
//!   non-word character.
//! Everything is linear in the length of the text (a message is at most 16,000 characters).

export type RichNode =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'bold'; readonly children: readonly RichNode[] }
  | { readonly kind: 'italic'; readonly children: readonly RichNode[] }
  | { readonly kind: 'code'; readonly text: string }
  | { readonly kind: 'codeblock'; readonly text: string }
  | { readonly kind: 'link'; readonly text: string; readonly href: string }
  /** `name` is as the room knows it; `text` is as written (with its `@`). */
  | { readonly kind: 'mention'; readonly name: string; readonly text: string };

export interface ParseOptions {
  /** Names of the people in the room, for @mentions. */
  readonly names?: readonly string[];
}

type Marker = '**' | '*' | '_';

type Token =
  | { readonly kind: 'node'; readonly node: RichNode }
  | { kind: 'marker'; readonly marker: Marker; readonly open: boolean; readonly close: boolean; pair: number | null; role: 'open' | 'close' | null };

const URL_START = /https?:\/\//iy;
const URL_BODY = /[^\s<>"'`]+/y;
const TRAILING = /[.,;:!?'"*_”’»]$/;
const WORD = /[\p{L}\p{N}_]/u;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACE = /\s/u;

/** Parses `text` into formatted nodes (adjacent text merged). */
export function parseRich(text: string, options: ParseOptions = {}): RichNode[] {
  const names = Array.from(new Set((options.names ?? []).filter((name) => name.length > 0)))
    .sort((a, b) => b.length - a.length);
  const tokens = tokenize(text, names);
  pairMarkers(tokens);
  return build(tokens);
}

/** The names of `names` that `text` mentions (outside code). */
export function mentionedNames(text: string, names: readonly string[]): Set<string> {
  const found = new Set<string>();
  const visit = (nodes: readonly RichNode[]): void => {
    for (const node of nodes) {
      if (node.kind === 'mention') found.add(node.name);
      else if (node.kind === 'bold' || node.kind === 'italic') visit(node.children);
    }
  };
  if (text.includes('@')) visit(parseRich(text, { names }));
  return found;
}

/** Whether `text` mentions `name` (as `@name`, outside code). */
export function mentions(text: string, name: string): boolean {
  return mentionedNames(text, [name]).size > 0;
}

/** The whole text of nodes, as written minus the markers (for tests and notifications). */
export function plainText(nodes: readonly RichNode[]): string {
  return nodes.map((node) => node.kind === 'bold' || node.kind === 'italic' ? plainText(node.children) : node.text).join('');
}

// ---- Tokens ---------------------------------------------------------------------------------

function isWord(char: string | undefined): boolean {
  return char !== undefined && WORD.test(char);
}

/** Letters and digits: what a link or a mention may not be glued to (`_` may, as in `_@Bob_`). */
function isAlnum(char: string | undefined): boolean {
  return char !== undefined && ALNUM.test(char);
}

function isSpace(char: string | undefined): boolean {
  return char === undefined || SPACE.test(char);
}

function tokenize(text: string, names: readonly string[]): Token[] {
  const tokens: Token[] = [];
  let plain = '';
  const flush = (): void => {
    if (plain.length > 0) tokens.push({ kind: 'node', node: { kind: 'text', text: plain } });
    plain = '';
  };
  const push = (node: RichNode): void => {
    flush();
    tokens.push({ kind: 'node', node });
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i] ?? '';
    const before = text[i - 1];
    if (char === '`') {
      const run = runLength(text, i, '`');
      if (run >= 3) {
        const close = text.indexOf('```', i + run);
        if (close >= 0) {
          push({ kind: 'codeblock', text: trimBlock(text.slice(i + run, close)) });
          i = close + runLength(text, close, '`');
          continue;
        }
        plain += text.slice(i, i + run);
        i += run;
        continue;
      }
      if (run === 1) {
        const close = inlineCodeEnd(text, i + 1);
        if (close > i + 1) {
          push({ kind: 'code', text: text.slice(i + 1, close) });
          i = close + 1;
          continue;
        }
      }
      plain += text.slice(i, i + run);
      i += run;
      continue;
    }
    if ((char === 'h' || char === 'H') && !isAlnum(before)) {
      const link = linkAt(text, i);
      if (link !== null) {
        push({ kind: 'link', text: link, href: link });
        i += link.length;
        continue;
      }
    }
    if (char === '@' && !isAlnum(before) && names.length > 0) {
      const name = mentionAt(text, i + 1, names);
      if (name !== null) {
        push({ kind: 'mention', name, text: text.slice(i, i + 1 + name.length) });
        i += 1 + name.length;
        continue;
      }
    }
    if (char === '*' || char === '_') {
      const run = runLength(text, i, char);
      const after = text[i + run];
      const open = !isSpace(after) && !isWord(before);
      const close = !isSpace(before) && !isWord(after);
      const markers = splitRun(char, run, open);
      if (markers === null || (!open && !close)) {
        plain += text.slice(i, i + run);
      } else {
        flush();
        for (const marker of markers) tokens.push({ kind: 'marker', marker, open, close, pair: null, role: null });
      }
      i += run;
      continue;
    }
    plain += char;
    i++;
  }
  flush();
  return tokens;
}

function runLength(text: string, at: number, char: string): number {
  let end = at;
  while (text[end] === char) end++;
  return end - at;
}

/** The markers a run of `*` or `_` stands for, or null if it is plain text (`__`, `****`). */
function splitRun(char: '*' | '_', run: number, opening: boolean): Marker[] | null {
  if (char === '_') return run === 1 ? ['_'] : null;
  if (run === 1) return ['*'];
  if (run === 2) return ['**'];
  // `***x***`: bold around italic, so the inner marker comes last when opening, first when closing.
  if (run === 3) return opening ? ['**', '*'] : ['*', '**'];
  return null;
}

/** Where the inline code opened before `from` ends (its closing backtick), or -1 on another line or never. */
function inlineCodeEnd(text: string, from: number): number {
  for (let j = from; j < text.length; j++) {
    const char = text[j];
    if (char === '\n') return -1;
    if (char === '`') return text[j + 1] === '`' ? -1 : j;
  }
  return -1;
}

/** A code block without the line breaks right after its opening and before its closing marker. */
function trimBlock(code: string): string {
  return code.replace(/^[ \t]*\n/, '').replace(/\n[ \t]*$/, '');
}

/** The http(s) link starting at `at`, without trailing punctuation, or null. */
function linkAt(text: string, at: number): string | null {
  URL_START.lastIndex = at;
  if (!URL_START.test(text)) return null;
  URL_BODY.lastIndex = URL_START.lastIndex;
  const body = URL_BODY.exec(text);
  if (body === null) return null;
  let url = text.slice(at, URL_BODY.lastIndex);
  for (;;) {
    if (TRAILING.test(url)) {
      url = url.slice(0, -1);
      continue;
    }
    const last = url.at(-1);
    if ((last === ')' && count(url, '(') < count(url, ')')) || (last === ']' && count(url, '[') < count(url, ']'))) {
      url = url.slice(0, -1);
      continue;
    }
    break;
  }
  return isHttpUrl(url) ? url : null;
}

function count(text: string, char: string): number {
  let n = 0;
  for (const c of text) if (c === char) n++;
  return n;
}

/** Whether `text` is an absolute http(s) URL with a host. */
export function isHttpUrl(text: string): boolean {
  if (!/^https?:\/\/[^/?#\s]/i.test(text)) return false;
  try {
    const url = new URL(text);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname.length > 0;
  } catch (e: unknown) {
    if (e instanceof TypeError) return false;
    throw e;
  }
}

/** The name of `names` (longest first, any case) written at `at`, ending at a non-word character. */
function mentionAt(text: string, at: number, names: readonly string[]): string | null {
  for (const name of names) {
    const written = text.slice(at, at + name.length);
    if (written.length === name.length && written.toLowerCase() === name.toLowerCase() && !isAlnum(text[at + name.length])) return name;
  }
  return null;
}

// ---- Pairing and the tree ---------------------------------------------------------------------

/**
 * Pairs closing markers with the nearest opening one of their kind. Openers left between
 * a pair's ends can never close (pairs do not cross) and are dropped from the stacks,
 * each once: linear.
 */
function pairMarkers(tokens: Token[]): void {
  const stacks = new Map<Marker, number[]>([['**', []], ['*', []], ['_', []]]);
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (token?.kind !== 'marker') continue;
    const stack = stacks.get(token.marker) ?? [];
    const opener = token.close ? stack.at(-1) : undefined;
    // A pair needs something between its markers.
    if (opener !== undefined && opener < index - 1) {
      stack.pop();
      const open = tokens[opener];
      if (open?.kind === 'marker') {
        open.pair = index;
        open.role = 'open';
      }
      token.pair = opener;
      token.role = 'close';
      for (const other of stacks.values()) {
        while ((other.at(-1) ?? -1) > opener) other.pop();
      }
      continue;
    }
    if (token.open) stack.push(index);
  }
}

function build(tokens: readonly Token[]): RichNode[] {
  interface Frame { readonly marker: Marker | null; readonly children: RichNode[] }
  const root: Frame = { marker: null, children: [] };
  const frames: Frame[] = [root];
  const add = (node: RichNode): void => {
    const children = (frames.at(-1) ?? root).children;
    const last = children.at(-1);
    if (node.kind === 'text' && last?.kind === 'text') children[children.length - 1] = { kind: 'text', text: last.text + node.text };
    else children.push(node);
  };
  for (const token of tokens) {
    if (token.kind === 'node') {
      add(token.node);
    } else if (token.role === 'open') {
      frames.push({ marker: token.marker, children: [] });
    } else if (token.role === 'close' && frames.length > 1) {
      const frame = frames.pop();
      if (frame !== undefined) add(frame.marker === '**' ? { kind: 'bold', children: frame.children } : { kind: 'italic', children: frame.children });
    } else {
      add({ kind: 'text', text: token.marker });
    }
  }
  return root.children;
}
