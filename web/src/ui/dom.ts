//! The one way the UI builds DOM: elements with properties, classes and text children.
//! Text always goes in as text nodes, so nothing a member sends can become markup;
//! there is no innerHTML anywhere in the client, and no inline style attribute (the CSP
//! forbids both inline scripts and inline styles).

type Child = Node | string | null | undefined | false;

export interface ElementProps {
  readonly class?: string | readonly (string | false | null | undefined)[];
  readonly text?: string;
  /** Attributes other than `style` and `on*` (refused, see below). */
  readonly attrs?: Readonly<Record<string, string | boolean | undefined>>;
  readonly on?: { readonly [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

/** Creates `<tag>` with props and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: ElementProps = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class !== undefined) {
    const classes = typeof props.class === 'string' ? props.class.split(' ') : props.class;
    for (const name of classes) if (typeof name === 'string' && name.length > 0) el.classList.add(name);
  }
  if (props.text !== undefined) el.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (name === 'style' || name.toLowerCase().startsWith('on')) throw new Error(`refusing to set attribute ${name}`);
    if (value === true) el.setAttribute(name, '');
    else if (typeof value === 'string') el.setAttribute(name, value);
  }
  for (const [type, listener] of Object.entries(props.on ?? {})) {
    if (listener !== undefined) el.addEventListener(type, listener as EventListener);
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** Replaces all children of `parent`. */
export function replaceChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** Finds a required element, failing loudly if the page is not what the code expects. */
export function required<T extends Element>(root: ParentNode, selector: string, type: new () => T): T {
  const el = root.querySelector(selector);
  if (!(el instanceof type)) throw new Error(`missing ${selector}`);
  return el;
}
