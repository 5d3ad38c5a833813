// The chat example (examples/chat) driven end to end: its page in headless
// Chromium tabs, plus two scripted clients (the `ws` package) for what a
// browser cannot be made to do: ignore pings, stop reading. run.sh starts
// the server with `--ping 1` and passes:
//   CHAT_URL  the page's address, http://127.0.0.1:PORT/
//   CHAT_LOG  the file the server's output goes to (it prints joins, leaves
//             and disconnections there)
//   CHROMIUM  the browser (default /usr/bin/chromium)
//   CHAT_DEFLATE  "0" when the server runs with --no-deflate
// Steps run in order and the first failure ends the run with its reason;
// the whole run has a budget of 30 s, so it never hangs.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const url = process.env.CHAT_URL;
const serverLog = process.env.CHAT_LOG;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const deflate = process.env.CHAT_DEFLATE !== "0";
if (!url || !serverLog) {
  console.error("CHAT_URL and CHAT_LOG must be set; run tests/browser/run.sh");
  process.exit(2);
}
const wsUrl = url.replace(/^http/, "ws") + "ws";

const BUDGET_MS = 30_000;
// What the server was started with (`--ping 1`): a ping after 1 s of
// silence, the client dropped after 3 s.
const IDLE_TIMEOUT_MS = 3_000;

let step = "starting";
let passed = 0;
const started = Date.now();
// Never hang: whatever is waiting, the run ends (and Playwright's exit
// handler kills the browser).
setTimeout(() => {
  console.error(`FAIL: over the ${BUDGET_MS / 1000} s budget, during: ${step}`);
  process.exit(1);
}, BUDGET_MS).unref();

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns something truthy; fails after `ms`. */
async function until(what, probe, ms = 5_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await sleep(25);
  }
}

// ----- Tabs -----------------------------------------------------------------

/** The log of a tab: [{kind: "text" | "binary" | "notice", text}]. */
const logOf = (tab) =>
  tab.page.$$eval("#log li", (items) => items.map((li) => ({ kind: li.dataset.kind, text: li.textContent })));

/** What the page shows for a binary message with these bytes. */
const binaryLine = (bytes) => `binary: ${Array.from(bytes).join(",")}`;

async function openTab(browser, name) {
  // A context (a profile) each: tabs of one context share a window, and
  // Chromium throttles the hidden ones, which makes clicks in them slow.
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => console.error(`tab ${name}: page error: ${e.message}`));
  const tab = { name, page };
  // The handshake's answer, to see what compression was agreed on.
  const cdp = await page.context().newCDPSession(page);
  cdp.on("Network.webSocketHandshakeResponseReceived", ({ response }) => {
    const headers = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k.toLowerCase(), v]));
    tab.extensions = headers["sec-websocket-extensions"] ?? "";
  });
  await cdp.send("Network.enable");
  await page.goto(url);
  await until(`tab ${name} to connect`, async () => (await page.textContent("#status")) === "open");
  // The room tells a newcomer about itself first.
  const first = await until(`tab ${name}'s join notice`, async () => (await logOf(tab))[0]);
  const joined = /^\* client (\d+) joined/.exec(first.text);
  check(joined, `tab ${name}: the first message was not its join notice: ${JSON.stringify(first)}`);
  tab.id = Number(joined[1]);
  return tab;
}

/** Sends through the page's own controls, as a person would. */
async function send(tab, kind, text) {
  await tab.page.fill("#text", text);
  await tab.page.click(kind === "binary" ? "#send-binary" : "#send");
}

/** The messages (not notices) a tab has shown. */
async function messagesOf(tab) {
  return (await logOf(tab)).filter((m) => m.kind !== "notice").map((m) => m.text);
}

async function waitForNotice(tab, pattern, ms) {
  await until(`tab ${tab.name} to show "${pattern}"`, async () => (await logOf(tab)).some((m) => pattern.test(m.text)), ms);
}

// ----- Scripted clients -------------------------------------------------------

/** A WebSocket client from Node, resolved once open with its room id. */
function openClient(name, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false, ...options });
    const client = { name, ws, received: [], closed: null };
    ws.on("message", (data, isBinary) => {
      // Lengths only for binary messages: the flood would be a lot to keep.
      client.received.push(isBinary ? { isBinary, length: data.length } : { isBinary, text: data.toString() });
      if (client.id === undefined) {
        const joined = /^\* client (\d+) joined/.exec(data.toString());
        if (!joined) return reject(new Error(`${name}: the first message was not its join notice`));
        client.id = Number(joined[1]);
        resolve(client);
      }
    });
    ws.on("close", (code) => {
      client.closed = { code, at: Date.now() };
      // No-ops once it has joined.
      reject(new Error(`${name}: closed (${code}) before its join notice`));
    });
    ws.on("error", (e) => reject(new Error(`${name}: ${e.message}`)));
  });
}

const serverSaid = (pattern) => pattern.test(readFileSync(serverLog, "utf8"));

// ----- The run ------------------------------------------------------------------

async function run(name, body) {
  step = name;
  const t = Date.now();
  await body();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - t} ms)`);
}

let browser;
try {
  await run("the page and its HTTP responses", async () => {
    const page = await fetch(url);
    const body = await page.text();
    check(page.status === 200, `GET / answered ${page.status}`);
    check(page.headers.get("content-type")?.startsWith("text/html"), "GET / is not text/html");
    check(Number(page.headers.get("content-length")) === Buffer.byteLength(body), "GET /: Content-Length is not the body's length");
    check(page.headers.get("connection") === "close", "GET / does not say Connection: close");
    check(body.includes('id="send-binary"'), "GET / is not the chat page");
    const missing = await fetch(new URL("/nope", url));
    check(missing.status === 404, `GET /nope answered ${missing.status}, not 404`);
  });

  // Playwright gives the browser a new empty profile (--user-data-dir).
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // Flags that keep Chromium from reaching out to the network, closed
    // here, and from needing a sandbox as root.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });

  // C only watches, from before the others join until after they leave.
  let observer, a, b;
  await run("three tabs join", async () => {
    observer = await openTab(browser, "C");
    a = await openTab(browser, "A");
    b = await openTab(browser, "B");
    await waitForNotice(observer, new RegExp(`^\\* client ${b.id} joined`));
    for (const tab of [observer, a, b]) {
      check(tab.extensions !== undefined, `tab ${tab.name}: no handshake response seen`);
      // With it, the long message below goes out compressed, once for all.
      check(
        tab.extensions.includes("permessage-deflate") === deflate,
        `tab ${tab.name}: the server answered Sec-WebSocket-Extensions: "${tab.extensions}" (deflate ${deflate ? "on" : "off"})`,
      );
    }
  });

  const sent = { A: [], B: [] };
  await run("text and binary from both tabs reach every tab, in order", async () => {
    const plan = {
      A: [
        ["text", "hello from A"],
        ["binary", "A bytes"],
        // Long enough to be compressed (once, for every tab).
        ["text", `long from A: ${"the quick brown fox jumps over the lazy dog. ".repeat(60)}`],
        ["binary", ""], // The page sends 1,2,3 for an empty box.
      ],
      B: [
        ["text", "hello from B ✓"],
        ["binary", "B bytes"],
        ["text", "<b>not bold</b>"],
      ],
    };
    // Then a burst from both at once, without waiting for echoes.
    for (let i = 0; i < 10; i++) {
      plan.A.push([i % 2 ? "binary" : "text", `a${i}`]);
      plan.B.push([i % 2 ? "binary" : "text", `b${i}`]);
    }
    const shown = ([kind, text]) =>
      kind === "text" ? text : binaryLine(text === "" ? [1, 2, 3] : new TextEncoder().encode(text));
    sent.A = plan.A.map(shown);
    sent.B = plan.B.map(shown);
    // The first messages one at a time, so each exchange is seen alone.
    await send(a, ...plan.A[0]);
    await send(b, ...plan.B[0]);
    await send(a, ...plan.A[1]);
    await send(b, ...plan.B[1]);
    await Promise.all([
      (async () => {
        for (const m of plan.A.slice(2)) await send(a, ...m);
      })(),
      (async () => {
        for (const m of plan.B.slice(2)) await send(b, ...m);
      })(),
    ]);
    const total = sent.A.length + sent.B.length;
    for (const tab of [a, b, observer]) {
      try {
        await until(`tab ${tab.name} to show all ${total} messages`, async () => (await messagesOf(tab)).length >= total);
      } catch (e) {
        throw new Error(`${e.message}; it shows ${JSON.stringify(await messagesOf(tab))}`);
      }
    }
    const logs = await Promise.all([a, b, observer].map(messagesOf));
    for (const [tab, log] of [[a, logs[0]], [b, logs[1]], [observer, logs[2]]]) {
      check(log.length === total, `tab ${tab.name} shows ${log.length} messages, ${total} were sent`);
      for (const who of ["A", "B"]) {
        const theirs = log.filter((line) => sent[who].includes(line));
        check(
          JSON.stringify(theirs) === JSON.stringify(sent[who]),
          `tab ${tab.name} did not get tab ${who}'s messages in order:\n  got  ${JSON.stringify(theirs)}\n  sent ${JSON.stringify(sent[who])}`,
        );
      }
    }
    // One broadcast order for everyone.
    check(logs[1].join("\n") === logs[0].join("\n"), "tabs A and B saw the messages in different orders");
    check(logs[2].join("\n") === logs[0].join("\n"), "tabs A and C saw the messages in different orders");
  });

  await run("heartbeats drop a client that stops answering pings, not the tabs", async () => {
    const mute = await openClient("mute client", { autoPong: false });
    const opened = Date.now();
    await until("the server to drop the mute client", async () => mute.closed, IDLE_TIMEOUT_MS + 3_000);
    const after = mute.closed.at - opened;
    check(mute.closed.code === 1001, `the mute client was closed with ${mute.closed.code}, not 1001 (going away)`);
    check(after >= IDLE_TIMEOUT_MS - 500, `the mute client was dropped after ${after} ms, before the idle timeout`);
    await waitForNotice(observer, new RegExp(`^\\* client ${mute.id} left`));
    // The tabs have been silent as long, but answer the pings: a second
    // more and a tab that did not would have been dropped too.
    await sleep(1_000);
    for (const tab of [a, b, observer]) {
      check((await tab.page.textContent("#status")) === "open", `tab ${tab.name} was disconnected by the heartbeat`);
    }
    await send(b, "text", "still here");
    for (const tab of [a, b, observer]) {
      await until(`tab ${tab.name} to show "still here"`, async () => (await messagesOf(tab)).at(-1) === "still here");
    }
  });

  await run("closed tabs leave the room", async () => {
    await a.page.close();
    await b.page.close();
    await waitForNotice(observer, new RegExp(`^\\* client ${a.id} left`));
    await waitForNotice(observer, new RegExp(`^\\* client ${b.id} left`));
    check(serverSaid(new RegExp(`^client ${a.id} left`, "m")), `the server's output does not say client ${a.id} left`);
    await observer.page.close();
  });

  await run("a client that stops reading is disconnected, the others are not", async () => {
    const sleeper = await openClient("sleeping client");
    sleeper.ws.pause();
    // It stops reading but keeps pinging, so the heartbeat (which only needs
    // to hear from it) does not drop it first: only its full queue can.
    const keepAlive = setInterval(() => sleeper.ws.ping(), 500);
    const flooder = await openClient("flooding client");
    const dropped = new RegExp(`^client ${sleeper.id} dropped: its queue`, "m");
    const size = 60 << 10;
    let sentCount = 0;
    const echoes = () => flooder.received.filter((m) => m.length === size).length;
    try {
      // Keep a few messages in flight (the flooder reads its own echoes),
      // so the flooder is never the one that falls behind.
      while (!serverSaid(dropped)) {
        check(sentCount < 2_000, `the sleeping client was not disconnected after ${sentCount} messages of ${size} bytes`);
        check(!flooder.closed, `the flooding client was disconnected (${flooder.closed?.code})`);
        if (sentCount - echoes() < 8) {
          flooder.ws.send(randomBytes(size));
          sentCount += 1;
        } else {
          await sleep(1);
        }
      }
    } finally {
      clearInterval(keepAlive);
    }
    await until(
      "the flooding client to hear the sleeping client left",
      () => flooder.received.some((m) => m.text?.startsWith(`* client ${sleeper.id} left`)),
    );
    check(!serverSaid(new RegExp(`^client ${flooder.id} dropped`, "m")), "the flooding client was dropped too");
    check(!flooder.closed, "the flooding client was disconnected");
    sleeper.ws.resume();
    await until("the sleeping client's connection to end", () => sleeper.closed, 5_000);
    console.log(`    (the queue filled after ${sentCount} messages of ${size} bytes)`);
    flooder.ws.close(1000, "done");
    await until("the flooding client to close", () => flooder.closed);
    check(flooder.closed.code === 1000, `the flooding client closed with ${flooder.closed.code}`);
  });
} catch (e) {
  console.error(`FAIL: ${step}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
}
const failed = process.exitCode ? 1 : 0;
console.log(`${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
process.exit(process.exitCode ?? 0);
