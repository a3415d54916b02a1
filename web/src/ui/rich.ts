//! A formatted message as elements: the tree of markup.ts built with DOM calls, every piece
//! of text a text node. Links open in a new tab with no opener and no referrer, and
//! nothing is fetched for them (no previews). A mention of this person is marked.

import { type RichNode, parseRich } from '../markup';
import '../conversation.css';
import { h } from './dom';

export interface RichContext {
  /** Names of the people in the room, for @mentions. */
  readonly names: readonly string[];
  /** This person's name: a mention of it is marked as such. */
  readonly self: string;
}

/** The elements of `text` formatted, and whether it mentions this person. */
export function richText(text: string, context: RichContext): { readonly nodes: Node[]; readonly mentionsMe: boolean } {
  const state = { mentionsMe: false };
  const nodes = parseRich(text, { names: [...context.names, context.self] }).map((node) => toDom(node, context, state));
  return { nodes, mentionsMe: state.mentionsMe };
}

function toDom(node: RichNode, context: RichContext, state: { mentionsMe: boolean }): Node {
  switch (node.kind) {
    case 'text':
      return document.createTextNode(node.text);
    case 'bold':
      return h('strong', {}, ...node.children.map((child) => toDom(child, context, state)));
    case 'italic':
      return h('em', {}, ...node.children.map((child) => toDom(child, context, state)));
    case 'code':
      return h('code', { class: 'inline-code', text: node.text });
    case 'codeblock':
      return h('pre', { class: 'code-block', attrs: { dir: 'ltr' } }, h('code', { text: node.text }));
    case 'link':
      return h('a', {
        text: node.text,
        attrs: { href: node.href, rel: 'noopener noreferrer nofollow', target: '_blank', referrerpolicy: 'no-referrer' },
      });
    case 'mention': {
      const me = node.name.toLowerCase() === context.self.toLowerCase();
      if (me) state.mentionsMe = true;
      return h('span', { class: ['mention', me && 'me'] }, h('bdi', { attrs: { dir: 'auto' }, text: node.text }));
    }
  }
}
