// Light formatting: what each marker does, and what stays as written (unclosed markers,
// markers inside words and code, trailing punctuation after links, hostile strings).
import { describe, expect, it } from 'vitest';
import { mentionedNames, mentions, parseRich, plainText, type RichNode } from '../src/markup';

const t = (text: string): RichNode => ({ kind: 'text', text });
const b = (...children: RichNode[]): RichNode => ({ kind: 'bold', children });
const i = (...children: RichNode[]): RichNode => ({ kind: 'italic', children });
const code = (text: string): RichNode => ({ kind: 'code', text });
const block = (text: string): RichNode => ({ kind: 'codeblock', text });
const link = (url: string): RichNode => ({ kind: 'link', text: url, href: url });

describe('parseRich: emphasis', () => {
  it('reads bold, both italics and plain text around them', () => {
    expect(parseRich('a **b** c')).toEqual([t('a '), b(t('b')), t(' c')]);
    expect(parseRich('_x_ and *y*')).toEqual([i(t('x')), t(' and '), i(t('y'))]);
    expect(parseRich('plain')).toEqual([t('plain')]);
    expect(parseRich('')).toEqual([]);
  });

  it('nests, either way round, and reads ***x*** as bold italic', () => {
    expect(parseRich('**bold _and italic_ here**')).toEqual([b(t('bold '), i(t('and italic')), t(' here'))]);
    expect(parseRich('_it **bold** it_')).toEqual([i(t('it '), b(t('bold')), t(' it'))]);
    expect(parseRich('***x***')).toEqual([b(i(t('x')))]);
    expect(parseRich('(**a**)')).toEqual([t('('), b(t('a')), t(')')]);
  });

  it('leaves unclosed markers as written', () => {
    expect(parseRich('**not closed')).toEqual([t('**not closed')]);
    expect(parseRich('_half')).toEqual([t('_half')]);
    expect(parseRich('**a _b**')).toEqual([b(t('a _b'))]);
    expect(parseRich('*a **b*')).toEqual([i(t('a **b'))]);
    expect(parseRich('** **')).toEqual([t('** **')]);
    expect(parseRich('****')).toEqual([t('****')]);
    expect(parseRich('__init__')).toEqual([t('__init__')]);
  });

  it('never crosses pairs', () => {
    // The `_` opened inside the bold cannot close outside it.
    expect(parseRich('**a _b** c_')).toEqual([b(t('a _b')), t(' c_')]);
  });

  it('ignores markers inside words and between spaces', () => {
    expect(parseRich('snake_case_name')).toEqual([t('snake_case_name')]);
    expect(parseRich('2*3*4 and a * b * c')).toEqual([t('2*3*4 and a * b * c')]);
    expect(parseRich('file_name.txt and _real_')).toEqual([t('file_name.txt and '), i(t('real'))]);
  });

  it('keeps the text whole: plainText gives back the words', () => {
    expect(plainText(parseRich('**a** _b_ `c` https://x.org'))).toBe('a b c https://x.org');
  });
});

describe('parseRich: code', () => {
  it('reads inline code and blocks, with nothing formatted inside', () => {
    expect(parseRich('run `**not bold** _x_` now')).toEqual([t('run '), code('**not bold** _x_'), t(' now')]);
    expect(parseRich('```\nconst a = b * c * d;\n**x**\n```')).toEqual([block('const a = b * c * d;\n**x**')]);
    expect(parseRich('see `https://example.org` here')).toEqual([t('see '), code('https://example.org'), t(' here')]);
    expect(parseRich('before ```one line``` after')).toEqual([t('before '), block('one line'), t(' after')]);
  });

  it('leaves an unclosed backtick or fence as written, and keeps inline code on one line', () => {
    expect(parseRich('a ` b')).toEqual([t('a ` b')]);
    expect(parseRich('```\nno end **b**')).toEqual([t('```\nno end '), b(t('b'))]);
    expect(parseRich('`a\nb`')).toEqual([t('`a\nb`')]);
    expect(parseRich('``')).toEqual([t('``')]);
  });

  it('puts code inside emphasis', () => {
    expect(parseRich('**see `x`**')).toEqual([b(t('see '), code('x'))]);
  });
});

describe('parseRich: links', () => {
  it('finds http and https links and leaves trailing punctuation out', () => {
    expect(parseRich('see https://example.org/a?b=1, then')).toEqual([t('see '), link('https://example.org/a?b=1'), t(', then')]);
    expect(parseRich('Go to http://a.b/c.')).toEqual([t('Go to '), link('http://a.b/c'), t('.')]);
    expect(parseRich('(see https://a.b/c)')).toEqual([t('(see '), link('https://a.b/c'), t(')')]);
    expect(parseRich('https://en.wikipedia.org/wiki/Foo_(bar)!')).toEqual([link('https://en.wikipedia.org/wiki/Foo_(bar)'), t('!')]);
    expect(parseRich('“https://a.b/x”?')).toEqual([t('“'), link('https://a.b/x'), t('”?')]);
  });

  it('reads markers next to links as emphasis, and never markers inside them', () => {
    expect(parseRich('**https://a.b/c**')).toEqual([b(link('https://a.b/c'))]);
    expect(parseRich('_https://a.b/x_y_z_')).toEqual([i(link('https://a.b/x_y_z'))]);
    expect(parseRich('https://a.b/*x*/y')).toEqual([link('https://a.b/*x*/y')]);
  });

  it('makes no other scheme a link', () => {
    for (const text of ['javascript:alert(1)', 'JAVASCRIPT://x.y/%0aalert(1)', 'data:text/html,<b>x</b>', 'vbscript:x', 'file:///etc/passwd', 'ftp://a.b/']) {
      expect(parseRich(text).some((node) => node.kind === 'link'), text).toBe(false);
    }
    expect(parseRich('xhttps://a.b')).toEqual([t('xhttps://a.b')]);
    expect(parseRich('https://')).toEqual([t('https://')]);
    expect(parseRich('http:///nohost')).toEqual([t('http:///nohost')]);
  });
});

describe('parseRich: hostile strings stay text', () => {
  it('keeps HTML as text, whatever the markers around it', () => {
    const html = '<img src=x onerror=window.__pwned=1>';
    expect(parseRich(html)).toEqual([t(html)]);
    expect(parseRich(`**${html}**`)).toEqual([b(t(html))]);
    expect(parseRich('<a href="javascript:alert(1)">x</a>')).toEqual([t('<a href="javascript:alert(1)">x</a>')]);
    // A quote ends a link, so an attribute cannot be smuggled into one.
    expect(parseRich('https://a.b/"onmouseover="x')).toEqual([link('https://a.b/'), t('"onmouseover="x')]);
  });

  it('stays linear on pathological input', () => {
    const started = performance.now();
    for (const text of ['*_'.repeat(8000), '**a'.repeat(5000), '`'.repeat(16_000), '_a '.repeat(5000), 'https://a.b/'.repeat(1300), '@'.repeat(16_000)]) {
      expect(plainText(parseRich(text, { names: ['a', 'Alice'] })).length).toBeGreaterThan(0);
    }
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('keeps bidi and control characters as text', () => {
    expect(parseRich('\u202e**x**\u202c')).toEqual([t('\u202e'), b(t('x')), t('\u202c')]);
  });
});

describe('mentions', () => {
  const names = ['Bob', 'Bob Smith', 'שרה'];

  it('finds @name, the longest name first, in any case, at word edges', () => {
    expect(parseRich('hi @Bob Smith!', { names })).toEqual([t('hi '), { kind: 'mention', name: 'Bob Smith', text: '@Bob Smith' }, t('!')]);
    expect(parseRich('@bob, look', { names })).toEqual([{ kind: 'mention', name: 'Bob', text: '@bob' }, t(', look')]);
    expect(parseRich('mail bob@Bob.org @Bobby', { names })).toEqual([t('mail bob@Bob.org @Bobby')]);
    expect(mentionedNames('**@שרה** and @Bob', names)).toEqual(new Set(['שרה', 'Bob']));
  });

  it('does not count a mention in code', () => {
    expect(mentions('`@Bob`', 'Bob')).toBe(false);
    expect(mentions('```\n@Bob\n```', 'Bob')).toBe(false);
    expect(mentions('_@Bob_', 'Bob')).toBe(true);
    expect(mentions('no mention', 'Bob')).toBe(false);
  });
});
