// Browses the stack's records in Adminer with headless Chromium, as a person would: log in with the read-only role,
// open the cases view and find the recorded cases there, then try to change a record through Adminer's SQL command
// page and see PostgreSQL refuse it. Driven by the C# integration test (DatabaseGuiTests), which passes everything
// through the environment; exits non-zero with a message saying what is wrong.
//
//   ADMINER_URL   http://127.0.0.1:PORT/ (the stack's Adminer)
//   DB_USER       the read-only login role (orthancseg_browser)
//   DB_PASSWORD   its password
//   CASE_KEYS     comma-separated case keys that the cases view must show
//   UPDATE_SQL    a statement that changes a record, which PostgreSQL must refuse
//   SCREENSHOT    where to save a screenshot of the last page (PNG)
import { chromium } from 'playwright-core';

class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

const env = name => {
  const value = process.env[name];
  if (!value) {
    fail(`environment variable ${name} is not set`);
  }
  return value;
};

const adminerUrl = env('ADMINER_URL');
const user = env('DB_USER');
const password = env('DB_PASSWORD');
const caseKeys = env('CASE_KEYS').split(',');
const updateSql = env('UPDATE_SQL');
const screenshot = env('SCREENSHOT');
const timeout = 30_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Adminer asks adminer.org for its newest version: nothing leaves this machine.
  await context.route(url => !url.href.startsWith(adminerUrl), route => route.abort());
  page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const text = async () => (await page.locator('body').innerText()).replace(/\s+/g, ' ');

  // 1. The login form asks only for the user and the password: server and database are fixed by the stack.
  await page.goto(adminerUrl, { waitUntil: 'domcontentloaded' });
  await page.locator('input[name="auth[username]"]').fill(user);
  await page.locator('input[name="auth[password]"]').fill(password);
  await page.locator('input[type=submit][value=Login]').click();
  await page.waitForLoadState('domcontentloaded');
  const logout = page.locator('input[name=logout]');
  if (!(await logout.count())) {
    fail(`the login as ${user} did not succeed; the page says: ${(await text()).slice(0, 400)}`);
  }
  console.log(`logged in as ${user}: ${(await page.locator('h2').first().innerText()).trim()}`);

  // 2. The cases view, from the list of tables and views on the left, shows every recorded case.
  const casesLink = page.locator('#tables a[href*="select=cases"]').first();
  if (!(await casesLink.count())) {
    fail(`the left menu lists no view "cases"; it lists: ${(await page.locator('#tables').innerText().catch(() => '(no menu)')).replace(/\s+/g, ' ')}`);
  }
  await casesLink.click();
  await page.waitForLoadState('domcontentloaded');
  const table = page.locator('table#table');
  if (!(await table.count())) {
    fail(`the cases view shows no table of rows; the page says: ${(await text()).slice(0, 400)}`);
  }
  const rows = await table.innerText();
  const missing = caseKeys.filter(key => !rows.includes(key));
  if (missing.length) {
    fail(`the cases view does not show the cases ${missing.join(', ')}; it shows: ${rows.replace(/\s+/g, ' ').slice(0, 600)}`);
  }
  console.log(`cases view: ${await table.locator('tbody tr').count()} rows, including ${caseKeys.join(', ')}`);

  // 3. A change through the SQL command page is refused by PostgreSQL, with its message on the page.
  await page.getByRole('link', { name: 'SQL command' }).first().click();
  await page.waitForLoadState('domcontentloaded');
  await page.locator('textarea[name=query]').evaluate((area, sql) => { area.value = sql; }, updateSql);
  await page.locator('input[type=submit][value=Execute]').click();
  await page.waitForLoadState('domcontentloaded');
  const error = page.locator('.error');
  if (!(await error.count())) {
    fail(`"${updateSql}" was not refused; the page says: ${(await text()).slice(0, 400)}`);
  }
  console.log(`refused: ${(await error.first().innerText()).replace(/\s+/g, ' ').trim()}`);
  await page.screenshot({ path: screenshot });
} catch (error) {
  if (page) {
    await page.screenshot({ path: screenshot }).catch(() => {});
  }
  console.error(`adminer-read-only: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
