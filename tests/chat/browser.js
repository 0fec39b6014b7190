// tests/chat/browser.js - drive examples/chat in the system's headless
// Chromium with puppeteer-core. Called by test_browser.py:
//
//   node browser.js <chat base URL> [screenshot.png]
//
// Prints "STEP <name>" as it goes and "PASS" at the end; any failure
// throws (exit status 1) with the reason.
"use strict";
const puppeteer = require("puppeteer-core");

const http = require("http");

const [base, shot] = process.argv.slice(2);
let foreignPort = 0;
const STEP_MS = 10000;
const pageErrors = [];

const t0 = Date.now();
function step(name) { console.log(`STEP ${name} at ${Date.now() - t0} ms`); }

async function newPage(browser, logs) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 640 });
  // Chromium reports a refused handshake's status only in its log.
  const cdp = await page.target().createCDPSession();
  await cdp.send("Log.enable");
  cdp.on("Log.entryAdded", (e) => logs.push(e.entry.text));
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return page;
}

async function status(page) { return page.$eval("#status", (e) => e.textContent); }

async function waitText(page, sel, text) {
  await page.waitForFunction((s, t) => {
    const e = document.querySelector(s);
    return e && e.textContent.includes(t);
  }, { timeout: STEP_MS, polling: 100 }, sel, text);
}

// Input goes to the tab in front (a background tab's events wait).
async function signIn(page, user, password) {
  await page.bringToFront();
  await page.goto(base, { waitUntil: "load" });
  await page.type("#username", user);
  await page.type("#password", password);
  await page.click("#signin");
}

async function say(page, text) {
  await page.bringToFront();
  await page.type("#text", text);
  await page.keyboard.press("Enter");
}

// The messages a page shows: [{from, text, mine}]
async function messages(page) {
  return page.$$eval("#messages li:not(.notice)", (lis) => lis.map((li) => ({
    from: li.querySelector(".from").textContent,
    text: li.querySelector(".body").textContent,
    mine: li.classList.contains("mine"),
  })));
}

async function waitMessage(page, from, text) {
  await page.waitForFunction((f, t) => [...document.querySelectorAll("#messages li")].some(
    (li) => li.querySelector(".from") && li.querySelector(".from").textContent === f &&
            li.querySelector(".body").textContent === t), { timeout: STEP_MS, polling: 100 }, from, text);
}

async function quietFor(page, text, ms) {
  await new Promise((r) => setTimeout(r, ms));
  const seen = (await messages(page)).some((m) => m.text === text);
  if (seen) throw new Error(`"${text}" crossed into another room`);
}

// The "other site": one page on another port of 127.0.0.1.
function foreignSite() {
  const srv = http.createServer((req, res) => {
    res.writeHead(req.url === "/" ? 200 : 404, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>elsewhere</title><p>another site</p>");
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => {
    foreignPort = srv.address().port;
    resolve(srv);
  }));
}

async function main() {
  const site = await foreignSite();
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
      // The chat's throwaway certificate is trusted by its key's pin only.
      .concat(process.env.SPKI_PIN ? [`--ignore-certificate-errors-spki-list=${process.env.SPKI_PIN}`] : []),
  });
  try {
    const logA = [], logB = [], logC = [], logD = [], logF = [];
    const a = await newPage(browser, logA);
    const b = await newPage(browser, logB);

    step("login");
    await signIn(a, "alice", "secret");
    await waitText(a, "#status", "connected");
    await waitText(a, "#whoami", "alice");
    await signIn(b, "bob", "hunter2");
    await waitText(b, "#status", "connected");

    step("exchange");
    await say(a, "Hi Bob! Did the build go green?");
    await waitMessage(b, "alice", "Hi Bob! Did the build go green?");
    await say(b, "Yes, gcc and clang both, with -Werror.");
    await waitMessage(a, "bob", "Yes, gcc and clang both, with -Werror.");
    await say(a, "Great, and ASan is quiet too. Shall we merge?");
    await waitMessage(b, "alice", "Great, and ASan is quiet too. Shall we merge?");
    await say(b, "Merging now — ça marche");
    await waitMessage(a, "bob", "Merging now — ça marche");
    const mine = (await messages(a)).filter((m) => m.mine).length;
    if (mine !== 2) throw new Error("alice's page shows " + mine + " own messages, want 2");
    if (shot) {
      await a.bringToFront(); /* a background tab never renders a frame */
      await a.screenshot({ path: shot });
    }

    step("rooms");
    await b.bringToFront();
    await b.click('button.room[data-room="dev"]');
    await waitText(b, "#roomtitle", "# dev");
    await say(a, "anyone in general?");
    await waitMessage(a, "alice", "anyone in general?");
    await say(b, "only dev sees this");
    await waitMessage(b, "bob", "only dev sees this");
    await quietFor(b, "anyone in general?", 500);
    await quietFor(a, "only dev sees this", 0);

    step("spent-otp");
    const spent = await a.evaluate(() => window.lastOtp);
    const c = await newPage(browser, logC);
    await c.goto(base, { waitUntil: "load" });
    await c.evaluate((otp) => connect(otp), spent);
    await waitText(c, "#status", "refused");
    await waitText(c, "#login-error", "refused");
    // Chromium words a 401 as "HTTP Authentication failed".
    if (!logC.some((t) => t.includes("401") || t.includes("Authentication failed")))
      throw new Error("no 401 in the browser's log: " + JSON.stringify(logC));

    step("wrong-password");
    const d = await newPage(browser, logD);
    await signIn(d, "alice", "not-her-password");
    await waitText(d, "#login-error", "Wrong username or password");
    if ((await status(d)) === "connected") throw new Error("wrong password connected");

    step("foreign-origin");
    // A page from another origin (another port of 127.0.0.1, served by
    // a server of ours below) tries the chat's WebSocket with a valid OTP.
    const fresh = await (await fetch(base + "login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "bob", password: "hunter2" }),
    })).json();
    const f = await newPage(browser, logF);
    const foreign = `http://127.0.0.1:${foreignPort}/`;
    await f.goto(foreign);
    const wsUrl = base.replace(/^http/, "ws") + "ws?otp=" + fresh.otp;
    const outcome = await f.evaluate((u) => new Promise((resolve) => {
      const ws = new WebSocket(u);
      ws.onopen = () => resolve("open");
      ws.onclose = (e) => resolve("closed " + e.code);
    }), wsUrl);
    if (outcome === "open") throw new Error("the foreign origin got a WebSocket");
    await new Promise((r) => setTimeout(r, 200));
    if (!logF.some((t) => t.includes("403")))
      throw new Error("no 403 in the browser's log: " + JSON.stringify(logF));
    // Refused before the hook: the OTP is still good from the chat's own page.
    await c.evaluate((otp) => connect(otp), fresh.otp);
    await waitText(c, "#status", "connected");
    await waitText(c, "#whoami", "bob");
    if (pageErrors.length > 0) throw new Error("page errors: " + pageErrors.join("; "));
    console.log("PASS");
  } finally {
    await browser.close();
    site.close();
  }
}

main().catch((e) => {
  console.error("FAIL " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
