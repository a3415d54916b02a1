//! Consecutive messages from the same person in the same minute form a group: the first
//! shows the name, fingerprint badge and time, the others only their bodies (the header
//! stays in the page for screen readers, hidden from view). Anything else in between (an
//! alert, the "new messages" line) starts a new group. The timeline is watched, so items
//! added, replaced, moved or removed anywhere regroup their neighbours.

/** Who sent an item and in which minute, or null for anything that is not a message. */
function groupKey(li: Element | null): { readonly sender: string; readonly minute: string } | null {
  if (!(li instanceof HTMLLIElement) || !li.classList.contains('msg')) return null;
  const meta = li.querySelector(':scope > .meta');
  const name = meta?.querySelector('.author')?.textContent;
  const fingerprint = meta?.querySelector('.badge')?.getAttribute('title');
  const iso = meta?.querySelector('time')?.getAttribute('datetime');
  if (meta === null || meta === undefined || name == null || fingerprint == null || iso == null) return null;
  const direct = meta.querySelector('.direct') !== null;
  // ISO 8601 in UTC: "2026-11-29T14:30"; time zones differ from UTC by whole quarters of an hour.
  return { sender: `${fingerprint}|${name}|${direct}`, minute: iso.slice(0, 16) };
}

/** Marks `li` as continuing the group of the item before it, or not. */
export function regroup(li: Element | null): void {
  if (!(li instanceof HTMLLIElement)) return;
  const mine = groupKey(li);
  const before = groupKey(li.previousElementSibling);
  const grouped = mine !== null && before !== null && mine.sender === before.sender && mine.minute === before.minute;
  li.classList.toggle('grouped', grouped);
}

/** Keeps the grouping of `timeline` (an `<ol>` of items) up to date. */
export function observeGrouping(timeline: HTMLOListElement): MutationObserver {
  const observer = new MutationObserver((mutations) => {
    const touched = new Set<Element>();
    for (const mutation of mutations) {
      if (mutation.target === timeline) {
        for (const node of mutation.addedNodes) {
          if (node instanceof Element) {
            touched.add(node);
            if (node.nextElementSibling !== null) touched.add(node.nextElementSibling);
          }
        }
        if (mutation.nextSibling instanceof Element) touched.add(mutation.nextSibling);
      } else if (mutation.target instanceof Element && Array.from(mutation.addedNodes).some((node) => node instanceof Element && node.classList.contains('meta'))) {
        // A header replaced inside an item (a file card gets the server's time).
        const li = mutation.target.closest('.timeline > li');
        if (li !== null) {
          touched.add(li);
          if (li.nextElementSibling !== null) touched.add(li.nextElementSibling);
        }
      }
    }
    for (const li of touched) if (li.isConnected) regroup(li);
  });
  observer.observe(timeline, { childList: true, subtree: true });
  return observer;
}
