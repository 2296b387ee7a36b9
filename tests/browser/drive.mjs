// Drive a built book page in headless Chromium with puppeteer-core: wait for widgets, act on
// controls like a reader (select an option, press arrow keys on a slider, type a number, click a
// checkbox) and read text back from the page after each action.
//
// Usage: node drive.mjs < job.json > result.json, with job =
//   {chromium, url, modules,            // modules: a node_modules folder holding puppeteer-core
//    ready: CSS selector, count,        // wait until `count` elements match and all have text
//    read: CSS selector,                // the text read (one string per match) after each action
//    actions: [{op: "select"|"keys"|"type"|"click", selector, index, value, key, times}],
//    timeout_ms}
// result = {initial: [texts], steps: [{action, texts}], console: [messages]}.
// Used by tests/browser/widgetcheck.py (drive_page).
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const job = JSON.parse(readFileSync(0, "utf8"));
const require = createRequire(join(job.modules, "noop.js"));
const puppeteer = require("puppeteer-core");
const timeout = job.timeout_ms ?? 30000;
const profile = mkdtempSync(join(tmpdir(), "ptutor-puppeteer-"));
const consoleLines = [];
const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  pipe: true,
  userDataDir: profile,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run",
         "--hide-scrollbars", "--mute-audio",
         // nothing but the local server resolves: the check cannot pass thanks to a real CDN
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--window-size=1280,1400"],
});
let exitCode = 0;
try {
  const page = await browser.newPage();
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(timeout);
  await page.goto(job.url, { waitUntil: "load" });
  await page.waitForFunction(
    (sel, n) => {
      const els = document.querySelectorAll(sel);
      return els.length >= n && [...els].every((e) => e.textContent.trim().length > 0);
    },
    { timeout, polling: 200 }, job.ready, job.count ?? 1);
  const read = () => page.$$eval(job.read, (els) => els.map((e) => e.textContent));
  const initial = await read();
  const steps = [];
  for (const action of job.actions ?? []) {
    const handles = await page.$$(action.selector);
    const el = handles[action.index ?? 0];
    if (!el) throw new Error(`no element ${action.selector} [${action.index ?? 0}]`);
    await el.scrollIntoView();
    const before = await read();
    if (action.op === "select") {
      await el.select(action.value);
    } else if (action.op === "keys") {
      await el.focus();
      for (let i = 0; i < (action.times ?? 1); i++) await page.keyboard.press(action.key);
    } else if (action.op === "type") {
      await el.click({ clickCount: 3 });
      await page.keyboard.press("Backspace");
      await el.type(String(action.value));
      await page.keyboard.press("Tab"); // leaving the field commits it ("change")
    } else if (action.op === "click") {
      await el.click();
    } else {
      throw new Error(`unknown op ${action.op}`);
    }
    // the page recomputes synchronously; give it a moment anyway, then read
    await page.waitForFunction((sel, old) => {
      const now = [...document.querySelectorAll(sel)].map((e) => e.textContent);
      return JSON.stringify(now) !== old;
    }, { timeout: 3000, polling: 50 }, job.read, JSON.stringify(before)).catch(() => {});
    steps.push({ action, texts: await read() });
  }
  process.stdout.write(JSON.stringify({ initial, steps, console: consoleLines }));
} catch (err) {
  process.stderr.write(`${err.stack || err}\n${consoleLines.join("\n")}\n`);
  exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
