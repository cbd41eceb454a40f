// Drives the browser example's page in headless Chromium (the system's, through
// puppeteer-core; nothing downloads a browser) and prints what the page reports.
//
// Input on stdin, JSON:
//   { "chromium": "/usr/bin/chromium", "timeoutMs": 60000, "stepTimeoutMs": 20000,
//     "steps": [{ "label": "...", "url": "http://...", "fn": "selfTest", "args": [...] }] }
// `fn` is a function of the page's `window.capwireDemo` (`ready`, `selfTest`, `tryBatch`,
// `tryWebSocket`), or `ui` (args `[title, note]`: fill in and submit the page's forms);
// each step loads `url` in a fresh tab, waits until the page is connected and calls
// `fn(...args)`.
// Output on stdout, JSON: { "steps": [{ "label", "transport", "result", "rpcPosts",
// "responses", "errors" }] }, where `rpcPosts` counts the POST requests the tab made while
// `fn` ran, `responses` lists the HTTP responses it got meanwhile ({ method, url, status },
// preflights included, even those CORS hid from the page) and `errors` collects the tab's
// uncaught errors and console errors. Exits 1 with a message on stderr when
// anything fails or takes longer than `timeoutMs` (the browser is closed in every case).

import puppeteer from "puppeteer-core";

const input = JSON.parse(await new Promise((resolve, reject) => {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
  process.stdin.on("error", reject);
}));

const timeoutMs = input.timeoutMs ?? 60000;
const started = Date.now();

const stepTimeoutMs = input.stepTimeoutMs ?? 20000;

/** Rejects when `promise` takes longer than a step may, or the harness's deadline passes. */
function inTime(promise, what) {
  const left = Math.min(timeoutMs - (Date.now() - started), stepTimeoutMs);
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out (${stepTimeoutMs} ms a step, ${timeoutMs} ms in all): ${what}`)), Math.max(left, 0));
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Uses the page as a person would: opens the list `title`, adds `note` with the form,
 * waits until the list shows it, and returns the list's items and the status line.
 */
async function useTheForms(page, title, note) {
  await page.$eval("#title", (input, value) => (input.value = value), title);
  await page.click("#open button");
  await page.type("#note", note);
  await page.click("#add button");
  await page.waitForFunction(
    (note) => [...document.querySelectorAll("#notes li")].some((li) => li.textContent === note),
    { timeout: 0 },
    note,
  );
  return page.evaluate(() => ({
    items: [...document.querySelectorAll("#notes li")].map((li) => li.textContent),
    status: document.getElementById("status")?.textContent,
  }));
}

let browser;
let failure = null;
const steps = [];
try {
  browser = await inTime(
    puppeteer.launch({
      executablePath: input.chromium,
      headless: true,
      // Over a pipe, so the browser exits with this process whatever happens.
      pipe: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
    }),
    `launching ${input.chromium}`,
  );
  for (const step of input.steps) {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    let counting = false;
    let rpcPosts = 0;
    const responses = [];
    page.on("request", (r) => {
      if (counting && r.method() === "POST") rpcPosts++;
    });
    page.on("response", (r) => {
      if (counting) responses.push({ method: r.request().method(), url: r.url(), status: r.status() });
    });
    const what = `${step.label} (${step.fn} on ${step.url})`;
    await inTime(page.goto(step.url, { waitUntil: "load" }), `loading ${what}`);
    await inTime(page.waitForFunction(() => "capwireDemo" in window), `waiting for the page's script in ${what}`);
    const transport = await inTime(page.evaluate(() => window.capwireDemo.ready), `connecting in ${what}`);
    counting = true;
    const result = await inTime(step.fn === "ui" ? useTheForms(page, ...step.args) : (
      page.evaluate((fn, args) => window.capwireDemo[fn](...args), step.fn, step.args ?? [])
    ), what);
    counting = false;
    steps.push({ label: step.label, transport, result, rpcPosts, responses, errors });
    await page.close();
  }
} catch (e) {
  failure = e;
} finally {
  if (browser) {
    // Closing gets 10 s of its own, even past the deadline; then the process is killed.
    let timer;
    const closed = await Promise.race([
      browser.close().then(() => true, () => false),
      new Promise((resolve) => (timer = setTimeout(() => resolve(false), 10000))),
    ]);
    clearTimeout(timer);
    if (!closed) browser.process()?.kill("SIGKILL");
  }
}

if (failure) {
  console.error(`browser harness failed: ${failure?.stack ?? failure}`);
  console.error(`steps done: ${JSON.stringify(steps)}`);
  process.exit(1);
}
console.log(JSON.stringify({ steps }));
