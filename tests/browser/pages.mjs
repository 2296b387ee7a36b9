// Visit every page of a built book in one headless Chromium (puppeteer-core) and report what a reader's
// browser meets there: console messages, script errors, failed requests, and the layout of tables, images and
// code at the given window size. tests/browser/pagecheck.py turns the report into problems.
//
// Usage: node pages.mjs < job.json > report.json, with job =
//   {chromium, modules, base, pages: ["book/intro.html", ...], width, height, timeout_ms}
// report = {pages: [{page, landed, console: [{type, text, url}], errors: [..], failed: [{url, why}], stalled: [..], undrawn,
//           column: {left, right, width}, tables: [..], images: [..], pre: [..], code: [..], text}]}
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const job = JSON.parse(readFileSync(0, "utf8"));
const require = createRequire(join(job.modules, "noop.js"));
const puppeteer = require("puppeteer-core");
const timeout = job.timeout_ms ?? 30000;
const profile = mkdtempSync(join(tmpdir(), "ptutor-pages-"));
const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  pipe: true,
  userDataDir: profile,
  // puppeteer hides scrollbars by default; a reader's browser draws them, and the table check measures them
  ignoreDefaultArgs: ["--hide-scrollbars"],
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-first-run", "--mute-audio",
         // nothing but the local server resolves: a page that needs the network fails here
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", `--window-size=${job.width},${job.height}`],
});

// Runs in the page: the text column, every table with the box that scrolls it, every image, every code text.
function measure() {
  const article = document.querySelector("article.bd-article") || document.body;
  const a = article.getBoundingClientRect(), as = getComputedStyle(article);
  const left = a.left + parseFloat(as.paddingLeft), right = a.right - parseFloat(as.paddingRight);
  const rect = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, width: r.width }; };
  const scrollBox = (e) => {
    for (let b = e.parentElement; b && b !== article; b = b.parentElement) {
      const s = getComputedStyle(b);
      if (s.overflowX === "auto" || s.overflowX === "scroll") {
        const bar = getComputedStyle(b, "::-webkit-scrollbar"), thumb = getComputedStyle(b, "::-webkit-scrollbar-thumb");
        return { ...rect(b), scrollWidth: b.scrollWidth, clientWidth: b.clientWidth,
                 bar: b.offsetHeight - b.clientHeight - parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth),
                 barStyled: bar.height !== "auto" && thumb.backgroundColor !== "rgba(0, 0, 0, 0)",
                 className: b.className };
      }
    }
    return null;
  };
  const tables = [...article.querySelectorAll("table")].map((t) => ({
    ...rect(t), scrollWidth: t.scrollWidth, head: t.innerText.replace(/\s+/g, " ").slice(0, 80), box: scrollBox(t) }));
  const images = [...article.querySelectorAll("img")].map((i) => ({
    src: i.currentSrc || i.src, natural: i.naturalWidth, shown: i.getBoundingClientRect().width, complete: i.complete,
    output: !!i.closest(".cell_output") }));
  const where = (e) => e.closest(".cell_input") ? "input" : e.closest(".cell_output") ? "output" : "text";
  const drawn = (e) => e.closest(".widget-subarea, .jupyter-widgets");  // text a widget's script computed
  const pre = [...article.querySelectorAll("pre")].filter((p) => !drawn(p))
    .map((p) => ({ where: where(p), text: p.textContent }));
  const code = [...article.querySelectorAll("code")].filter((c) => !c.closest("pre") && !drawn(c))
    .map((c) => ({ where: where(c), text: c.textContent }));
  return { column: { left, right, width: right - left }, tables, images, pre, code, text: article.innerText };
}

// Runs in the page: how many widget outputs html-manager has not drawn yet (it puts a .widget-subarea with
// content just before each view's script tag).
function undrawn() {
  return [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')].filter((v) => {
    const area = v.previousElementSibling;
    return !(area && area.classList.contains("widget-subarea") && area.childElementCount > 0);
  }).length;
}

const report = { pages: [] };
let exitCode = 0;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: job.width, height: job.height });
  // every page fetches what it needs itself, as on a first visit (a script served from the memory cache may
  // never report the end of its request, and a first-time reader's failed request would go unseen)
  await page.setCacheEnabled(false);
  page.setDefaultTimeout(timeout);
  let seen = null;
  // requests in flight; the browser's own favicon request is left out, as it may never report its end
  const inFlight = new Set();
  page.on("request", (r) => { if (!/\/favicon\.ico$/.test(r.url())) inFlight.add(r); });
  page.on("requestfinished", (r) => inFlight.delete(r));
  page.on("requestfailed", (r) => inFlight.delete(r));
  // DevTools sometimes never reports the end of a script request that did load: the page's own record of
  // its loaded resources (Resource Timing) settles those
  const settle = async () => {
    const done = new Set(await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((e) => e.responseEnd > 0).map((e) => e.name)).catch(() => []));
    for (const r of inFlight) if (done.has(r.url())) inFlight.delete(r);
  };
  const quiet = async (idleMs) => {
    const until = Date.now() + timeout;
    let since = Date.now(), checked = Date.now();
    while (Date.now() < until) {
      await new Promise((done) => setTimeout(done, 50));
      if (inFlight.size && Date.now() - checked > 1000) {
        await settle();
        checked = Date.now();
      }
      if (inFlight.size) since = Date.now();
      else if (Date.now() - since >= idleMs) return [];
    }
    return [...inFlight].map((r) => r.url());  // still loading after `timeout`
  };
  page.on("console", (m) => seen?.console.push({ type: m.type(), text: m.text(), url: m.location()?.url ?? "" }));
  page.on("pageerror", (e) => seen?.errors.push(e.message));
  page.on("requestfailed", (r) => seen?.failed.push({ url: r.url(), why: r.failure()?.errorText ?? "failed" }));
  page.on("response", (r) => { if (r.status() >= 400) seen?.failed.push({ url: r.url(), why: `HTTP ${r.status()}` }); });
  for (const path of job.pages) {
    seen = { page: path, console: [], errors: [], failed: [] };
    inFlight.clear();  // what the previous page left loading is not this page's
    const start = Date.now();
    await page.goto(job.base + path, { waitUntil: "load" });
    seen.load_ms = Date.now() - start;
    // widgets and MathJax load after "load": wait until the network has been quiet for a moment, until every
    // widget output is drawn (html-manager puts a .widget-subarea with content before its view tag), and quiet again
    seen.stalled = await quiet(300);
    seen.undrawn = await page.evaluate(undrawn).catch(() => 0);
    if (seen.undrawn) {
      await page.waitForFunction(`(${undrawn})() === 0`, { timeout, polling: 100 }).catch(() => {});
      seen.undrawn = await page.evaluate(undrawn);
    }
    seen.stalled.push(...await quiet(300));
    try {
      Object.assign(seen, await page.evaluate(measure));
    } catch (err) {  // a page that redirects (index.html) may still be navigating: measure where it lands
      await page.waitForNavigation({ waitUntil: "load" }).catch(() => {});
      Object.assign(seen, await page.evaluate(measure));
    }
    seen.landed = page.url().slice(job.base.length);  // index.html redirects to the first chapter page
    seen.ms = Date.now() - start;
    report.pages.push(seen);
    process.stderr.write(`${path}: ${seen.ms} ms\n`);  // progress, shown if the run fails
  }
  process.stdout.write(JSON.stringify(report));
} catch (err) {
  process.stderr.write(`${err.stack || err}\n`);
  exitCode = 1;
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
