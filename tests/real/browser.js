// The person at the browser, for the `real_as` tests: used as oauth-pkce's $BROWSER.
//
//   node tests/real/browser.js --report FILE [--chromium PATH] [--login NAME] [--deny] URL
//
// It starts Debian's headless Chromium (never a downloaded browser) through playwright-core,
// opens URL, signs in on oidc-provider's login form (name + password, "Sign-in"), and on the
// consent page clicks "Continue" — or "[ Cancel ]" with --deny — then waits until the
// browser has landed on oauth-pkce's loopback callback page. Every request that leaves
// 127.0.0.1 is blocked (and listed with its resource type), so no test reaches the internet
// (oidc-provider's pages @import a web font's stylesheet). oauth-pkce does not wait for this process, so it writes what it saw to
// FILE as JSON ({"ok", "steps", "callback", "blocked", "error"}); the test reads that file.
// Nothing secret is written: the callback URL is recorded without its query.

import { writeFileSync } from 'node:fs';

import { chromium } from 'playwright-core';

const TIMEOUT_MS = 45_000;

function parseArgs(argv) {
  const opts = { chromium: '/usr/bin/chromium', login: 'alice', deny: false };
  const rest = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--report') opts.report = argv[++i];
    else if (a === '--chromium') opts.chromium = argv[++i];
    else if (a === '--login') opts.login = argv[++i];
    else if (a === '--deny') opts.deny = true;
    else rest.push(a);
  }
  if (!opts.report || rest.length !== 1) {
    process.stderr.write('usage: browser.js --report FILE [--chromium PATH] [--login NAME] [--deny] URL\n');
    process.exit(2);
  }
  opts.url = rest[0];
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const report = { ok: false, steps: [], callback: null, blocked: [], error: null };
const save = () => writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
const step = (what, page) => report.steps.push({ what, url: page ? withoutQuery(page.url()) : null });

function withoutQuery(u) {
  try {
    const parsed = new URL(u);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

const isLoopback = (u) => {
  try {
    const { protocol, hostname } = new URL(u);
    return (protocol === 'http:' || protocol === 'https:') && (hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]');
  } catch {
    return false;
  }
};

const killer = setTimeout(() => {
  report.error = `gave up after ${TIMEOUT_MS} ms`;
  save();
  process.exit(3);
}, TIMEOUT_MS);

let browser;
try {
  browser = await chromium.launch({
    executablePath: opts.chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-proxy-server',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (isLoopback(u)) return route.continue();
    report.blocked.push({ url: withoutQuery(u), type: route.request().resourceType() });
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);

  await page.goto(opts.url);
  step('opened the authorization URL', page);

  await page.locator('input[name="login"]').fill(opts.login);
  await page.locator('input[name="password"]').fill('correct horse battery staple');
  await page.getByRole('button', { name: 'Sign-in' }).click();

  // The consent page: what the client asks for, "Continue" or "[ Cancel ]".
  await page.getByRole('button', { name: 'Continue' }).waitFor();
  step(`signed in as ${opts.login}`, page);
  report.consent_text = (await page.locator('.login-card ul').first().innerText()).trim();
  const callback = page.waitForURL((u) => u.pathname.endsWith('/callback') && isLoopback(u.href));
  if (opts.deny) {
    await page.getByRole('link', { name: '[ Cancel ]' }).click();
    step('denied consent', page);
  } else {
    await page.getByRole('button', { name: 'Continue' }).click();
    step('consented', page);
  }
  await callback;
  await page.waitForLoadState('load');
  const params = new URL(page.url()).searchParams;
  report.callback = {
    url: withoutQuery(page.url()),
    query_keys: [...params.keys()].sort(),
    error: params.get('error'),
    title: await page.title(),
    text: (await page.locator('body').innerText()).trim(),
  };
  step('landed on the callback page', page);
  report.ok = true;
} catch (err) {
  // Without queries: a URL in an error may carry a code or a state.
  report.error = String(err?.message ?? err).split('\n').slice(0, 6).join('\n').replace(/\?[^\s"]*/g, '?…');
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(killer);
  save();
}
process.exit(report.ok ? 0 : 1);
