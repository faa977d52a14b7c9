// Browser driver for the end-to-end test (tests/integration/run.py): Debian's
// Chromium, headless, driven with playwright-core from npm (no browser
// download). One action per run; prints one JSON document on stdout.
//
//   node tests/browser/drive.mjs play   '{"page": URL, "resolve": RULES, "seconds": 4, "timeout_s": 40}'
//     opens the test player page and waits until playback has advanced
//     `seconds`: {"position", "requests": [{kind, url, answered, cache, bytes}], "errors", "console"}
//   node tests/browser/drive.mjs status '{"page": URL, "token": T, "wait_for": CSS, "screenshot": PNG}'
//     opens a status page with the operator token, waits for the selector,
//     screenshots the page: {"text": {selector: text}, "rows": [...], "screenshot"}
//
// RULES is Chromium's --host-resolver-rules ("MAP video.example.com:80
// 127.0.0.1:8083"): the sample hosts have no DNS here. With "ca": PEM, the
// browser trusts that CA (put in the NSS database of a throwaway HOME with
// certutil, where Chromium on Linux looks for trust anchors): HTTPS with
// every check on, not with checks turned off.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { chromium } = createRequire(path.join(root, "package.json"))("playwright-core");

const [action, arg] = process.argv.slice(2);
const opt = JSON.parse(arg || "{}");
const args = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"];
if (opt.resolve) args.push("--host-resolver-rules=" + opt.resolve);
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox"); // Chromium refuses root otherwise

const env = { ...process.env };
let home = null;
if (opt.ca) {
  home = fs.mkdtempSync(path.join(os.tmpdir(), "cdni-browser-"));
  const db = "sql:" + path.join(home, ".pki", "nssdb");
  fs.mkdirSync(path.join(home, ".pki", "nssdb"), { recursive: true });
  execFileSync("certutil", ["-N", "--empty-password", "-d", db]);
  execFileSync("certutil", ["-A", "-d", db, "-n", "cdni-gateway local CA", "-t", "C,,", "-i", opt.ca]);
  env.HOME = home;
}
const browser = await chromium.launch({ executablePath: opt.chromium || "/usr/bin/chromium", headless: true, args, env });
let out;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const console_ = [];
  page.on("console", (m) => console_.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));
  const timeout = (opt.timeout_s || 30) * 1000;
  if (action === "play") {
    await page.goto(opt.page, { waitUntil: "load" });
    try {
      await page.waitForFunction((s) => window.player && window.player.position >= s, opt.seconds || 4,
                                 { timeout, polling: 200 });
    } catch (e) {
      console_.push("timeout: " + e.message.split("\n")[0]);
    }
    const st = await page.evaluate(() => window.player);
    out = { position: st ? st.position : 0, requests: st ? st.requests : [], errors: st ? st.errors : [],
            console: console_ };
  } else if (action === "status") {
    await page.goto(opt.page + "#token=" + encodeURIComponent(opt.token), { waitUntil: "load" });
    await page.waitForSelector(opt.wait_for, { timeout });
    await page.waitForSelector("body[data-ready]", { timeout });
    const text = {};
    for (const sel of opt.read || []) text[sel] = (await page.locator(sel).first().textContent()) || "";
    const rows = await page.$$eval("main:not([hidden]) tbody tr",
                                   (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    if (opt.screenshot) await page.screenshot({ path: opt.screenshot, fullPage: true });
    out = { text, rows, screenshot: opt.screenshot || null, console: console_,
            address: page.url() };
  } else {
    throw new Error("unknown action " + action);
  }
} finally {
  await browser.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + "\n");
