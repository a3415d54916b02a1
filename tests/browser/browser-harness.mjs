// Shared helpers of the browser tests: Debian's Chromium driven by playwright-core, people
// who open StreamChat in their own browser context (own storage, own tab), and checks
// that the page ran without console errors (which is where CSP violations show up).
import { after, before } from 'node:test';
import { startServer } from '../harness.mjs';
import { mkdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifactsDir = path.join(repoRoot, 'test-artifacts');

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/** "14:30:45 · 2026-11-29" as the client writes a message's time and date. */
export const TIME_AND_DATE = /\b\d{2}:\d{2}:\d{2} · \d{4}-\d{2}-\d{2}\b/;
/** "… at 14:30:45 on 2026-11-29" as in presence alerts. */
export const AT_TIME_ON_DATE = /at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}/;

export async function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

export function artifactPath(name) {
  mkdirSync(artifactsDir, { recursive: true });
  return path.join(artifactsDir, name);
}

/**
 * A person with their own browser context and tab. `errors` collects console errors and
 * uncaught exceptions, including "Refused to … because it violates the following Content
 * Security Policy directive" messages.
 */
export async function newPerson(browser, { viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, timezoneId: 'UTC', locale: 'en-GB' });
  if (process.env.STREAMCHAT_WEB_DIST) await serveWebDist(context, process.env.STREAMCHAT_WEB_DIST);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  page.setDefaultTimeout(15_000);
  return { context, page, errors };
}

/**
 * With $STREAMCHAT_WEB_DIST (a `web/dist` directory), the page's scripts and styles come
 * from that build instead of the one embedded in the binary, so a web change can be
 * tested without rebuilding the server. The page itself still comes from the server (a
 * page fulfilled by the test would lose its loopback origin, and Chromium's local network
 * checks would then block its WebSocket), so the build must keep the embedded
 * `index.html`'s entry points: `/assets/index-HASH.js` is answered with the build's
 * `assets/index-*.js`, likewise for CSS, and other files by path. Each answer keeps the
 * server's headers (CSP and all) and only swaps the body.
 */
async function serveWebDist(context, distDir) {
  const root = path.resolve(distDir);
  const built = await readdir(path.join(root, 'assets'));
  await context.route(() => true, async (route) => {
    const request = route.request();
    const url = new URL(request.url());
    if (request.method() !== 'GET' || request.resourceType() === 'document' || !url.protocol.startsWith('http')) return route.fallback();
    const file = await builtFile(root, built, decodeURIComponent(url.pathname));
    if (file === null) return route.fallback();
    // The server's own answer, for its headers. (Node fetches it, so a host name that only
    // the browser resolves, as in safety.test.mjs, fails here: the browser then asks itself.)
    const response = await route.fetch().catch(() => null);
    if (response === null || response.status() !== 200) return route.fallback();
    const headers = { ...response.headers() };
    delete headers['content-length'];
    await route.fulfill({ status: 200, headers, body: await readFile(file) });
  });
}

/** The file of the build at `root` that answers `pathname`, or null. */
async function builtFile(root, built, pathname) {
  const hashed = pathname.match(/^\/assets\/([A-Za-z0-9_]+)-[A-Za-z0-9_-]+\.(js|css)$/);
  if (hashed !== null) {
    const [, name, ext] = hashed;
    const matches = built.filter((file) => file.startsWith(`${name}-`) && file.endsWith(`.${ext}`));
    return matches.length === 1 ? path.join(root, 'assets', matches[0]) : null;
  }
  const file = path.resolve(root, pathname.replace(/^\/+/, ''));
  if (!file.startsWith(root + path.sep)) return null;
  return (await stat(file).then((s) => s.isFile(), () => false)) ? file : null;
}

/** Opens `url`, enters `name` and creates or joins the room; resolves when connected. */
/** The landing page's label for a v1 room (new rooms are knock rooms unless chosen otherwise). */
export const V1_ROOM = 'Anyone with the link, one key for the whole room';

/**
 * Opens `url` and enters with `name`. On the landing page (a new room) it chooses the kind
 * labelled `kind`, a v1 room unless told otherwise: the tests of everything but v2 rooms
 * (tests/browser/mls-rooms.test.mjs) let people in by link.
 */
export async function enterRoom(person, url, name, kind = V1_ROOM) {
  const { page } = person;
  await page.goto(url);
  await page.getByLabel('Your name').fill(name);
  if (await page.locator('fieldset.room-kinds').count() > 0) await page.getByLabel(kind, { exact: true }).check();
  await page.locator('form.name-form button[type=submit]').click();
  await waitConnected(page);
}

export async function waitConnected(page, timeout = 15_000) {
  await page.locator('.conn-status[data-tone=ok]').waitFor({ timeout });
}

/** Sends a message the way a person does: type, then Enter. */
export async function say(page, text) {
  const input = page.getByLabel('Message', { exact: true });
  await input.fill(text);
  await input.press('Enter');
}

/** Waits until `page` shows a message with exactly `text` from `author`; returns its element. */
export async function waitForMessage(page, author, text, timeout = 15_000) {
  const message = page.locator('li.msg').filter({ has: page.locator('.author', { hasText: author }) })
    .filter({ has: page.locator('.text').getByText(text, { exact: true }) });
  await message.first().waitFor({ timeout });
  return message.first();
}

export async function waitForAlert(page, pattern, timeout = 15_000) {
  const alert = page.locator('li.alert').filter({ hasText: pattern });
  await alert.first().waitFor({ timeout });
  return (await alert.first().textContent()) ?? '';
}

/** The online list as [{name, fingerprint, self}]. */
export async function memberList(page) {
  return page.locator('.member-list .member').evaluateAll((buttons) => buttons.map((button) => ({
    name: button.querySelector('.member-name')?.firstChild?.textContent ?? '',
    fingerprint: button.querySelector('.fingerprint')?.textContent ?? '',
    self: button.querySelector('.you') !== null,
  })));
}

export async function waitForMembers(page, count, timeout = 15_000) {
  await page.waitForFunction((n) => document.querySelectorAll('.member-list .member').length === n, count, { timeout });
  return memberList(page);
}

export function assertNoErrors(person, label) {
  assert.deepEqual(person.errors, [], `${label}: console errors or CSP violations`);
}

/**
 * Starts the release server and Chromium before a file's tests and stops both after.
 * Returns an object whose `server` and `browser` are set once started (a test may
 * replace `server`, e.g. to restart it). With `workDir` (a name prefix), `work` is a
 * fresh temporary directory, removed after the tests.
 */
export function serverAndBrowser({ serverArgs = [], browserArgs = [], workDir } = {}) {
  const env = { server: undefined, browser: undefined, work: undefined };
  before(async () => {
    env.server = await startServer(serverArgs);
    env.browser = await launchBrowser(browserArgs);
    if (workDir !== undefined) env.work = await mkdtemp(path.join(tmpdir(), workDir));
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
    if (env.work !== undefined) await rm(env.work, { recursive: true, force: true });
  });
  return env;
}

/** Every way a string could leak: as UTF-8, UTF-16, hex, base64 and base64url. */
export function encodings(text) {
  const utf8 = Buffer.from(text, 'utf8');
  return [
    utf8,
    Buffer.from(text, 'utf16le'),
    Buffer.from(utf8.toString('hex')),
    Buffer.from(utf8.toString('base64').replace(/=+$/, '')),
    Buffer.from(utf8.toString('base64url')),
  ];
}

/** Attaches a file (bytes in memory, or `{name, mimeType, buffer}` / a path) to the composer. */
export async function attach(page, name, mimeType, buffer) {
  await page.locator('.composer input[type=file]').setInputFiles({ name, mimeType, buffer });
}

/** The chat's card for the file named `name`. */
export function fileCard(page, name) {
  return page.locator('li.msg.file').filter({ has: page.locator('.file-name', { hasText: name }) });
}

/** Clicks a file card's Save link; resolves with the saved bytes. */
export async function download(page, card) {
  const [saved] = await Promise.all([page.waitForEvent('download'), card.getByRole('link', { name: 'Save' }).click()]);
  return readFile(await saved.path());
}

/**
 * A small landscape (sky, sun, hills) drawn in `page` as a PNG of `width` × `height`:
 * a picture to share like any file, made on the spot.
 */
export async function drawnPicture(page, width = 360, height = 200) {
  return Buffer.from(await page.evaluate(([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const context = canvas.getContext('2d');
    const sky = context.createLinearGradient(0, 0, 0, h);
    sky.addColorStop(0, '#1c3f94');
    sky.addColorStop(0.6, '#f08a4b');
    sky.addColorStop(1, '#f6c177');
    context.fillStyle = sky;
    context.fillRect(0, 0, w, h);
    context.fillStyle = '#ffe9a8';
    context.beginPath();
    context.arc(w / 2, h * 0.75, h * 0.17, 0, Math.PI * 2);
    context.fill();
    context.fillStyle = '#243b55';
    context.beginPath();
    context.moveTo(0, h);
    for (const [x, y] of [[0.25, 0.55], [0.44, 0.85], [0.69, 0.45], [1, 0.925], [1, 1]]) context.lineTo(w * x, h * y);
    context.fill();
    const data = canvas.toDataURL('image/png').split(',')[1];
    return Array.from(atob(data), (c) => c.charCodeAt(0));
  }, [width, height]));
}
