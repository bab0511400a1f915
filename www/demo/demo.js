// The demo page: webcam or image → classifier and/or detector → results drawn over the picture.
import { ImageClassifier, ObjectDetector, drawDetections } from "../lib/sightline.js";

const $ = (id) => document.getElementById(id);
const video = $("video");
const still = $("still");
const overlay = $("overlay");
const ctx = overlay.getContext("2d");

const params = new URLSearchParams(location.search);
let mode = params.get("mode") ?? "classify";
let backend = params.get("backend") ?? "auto";
let classifier = null;
let detector = null;
let stream = null;
let frames = 0;
let lastFrameAt = 0;
let fps = 0;
let generation = 0;

function setStatus(text, state = "ready") {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function ready() {
  return (mode !== "detect" ? classifier : true) && (mode !== "classify" ? detector : true);
}

function setEnabled() {
  const ok = Boolean(ready());
  $("camera-start").disabled = !ok || stream !== null;
  $("camera-stop").disabled = stream === null;
  $("file").disabled = !ok;
}

function detectorOptions() {
  return { scoreThreshold: Number($("score").value), maxResults: Number($("max-results").value) };
}

/** (Re)loads what the current mode needs on the current backend. */
async function load() {
  const mine = ++generation;
  setEnabled();
  setStatus(`Loading (${mode} on ${backend})…`, "loading");
  try {
    if (mode !== "detect" && (!classifier || classifier.requested !== backend)) {
      await classifier?.close();
      classifier = null;
      const c = await ImageClassifier.create({ backend, topK: 5 });
      c.requested = backend;
      classifier = c;
    }
    if (mode !== "classify" && (!detector || detector.requested !== backend)) {
      await detector?.close();
      detector = null;
      const d = await ObjectDetector.create({ backend, ...detectorOptions() });
      d.requested = backend;
      detector = d;
    }
    if (mine !== generation) return;
    const running = (mode === "detect" ? detector : classifier).backend;
    const reason = (classifier ?? detector).fallbackReason;
    setStatus(`Ready: ${mode} on ${running}${reason ? ` — fell back to CPU: ${reason}` : ""}`, "ready");
    $("status").dataset.backend = running;
  } catch (e) {
    if (mine === generation) setStatus(`Could not load the model: ${e.name}: ${e.message}`, "error");
  }
  setEnabled();
}

/** Top classes as probability bars in the bottom-left corner (boxes' labels sit on top edges). */
function drawClasses(classes, width, height) {
  const scale = Math.max(1, width / 640);
  const rowH = 22 * scale;
  const barW = Math.min(width * 0.6, 360 * scale);
  ctx.save();
  ctx.font = `${14 * scale}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  classes.forEach((c, i) => {
    const y = height - 8 * scale - (classes.length - i) * rowH;
    ctx.fillStyle = "rgba(0,0,0,.55)";
    ctx.fillRect(8 * scale, y, barW, rowH - 4 * scale);
    ctx.fillStyle = i === 0 ? "rgba(76,175,80,.9)" : "rgba(33,150,243,.8)";
    ctx.fillRect(8 * scale, y, barW * c.score, rowH - 4 * scale);
    ctx.fillStyle = "#fff";
    ctx.fillText(`${(c.score * 100).toFixed(1)}%  ${c.label}`, 12 * scale, y + (rowH - 4 * scale) / 2);
  });
  ctx.restore();
}

function listResults(classes, detections) {
  const list = $("result");
  list.replaceChildren(
    ...(classes ?? []).map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.label} — ${(c.score * 100).toFixed(1)}%`;
      return li;
    }),
  );
  list.dataset.top1 = classes?.[0]?.label ?? "";
  const objects = $("objects");
  objects.replaceChildren(
    ...(detections ?? []).map((d) => {
      const li = document.createElement("li");
      const b = d.box;
      li.textContent = `${d.label} ${(d.score * 100).toFixed(0)}% at (${b.x.toFixed(0)}, ${b.y.toFixed(0)}) ${b.width.toFixed(0)}×${b.height.toFixed(0)}`;
      return li;
    }),
  );
  objects.dataset.labels = (detections ?? []).map((d) => d.label).join(",");
}

function showStats(ms, running) {
  frames += 1;
  const now = performance.now();
  if (lastFrameAt) fps = frames === 2 ? 1000 / (now - lastFrameAt) : 0.8 * fps + 0.2 * (1000 / (now - lastFrameAt));
  lastFrameAt = now;
  const rate = frames > 1 ? `${fps.toFixed(1)} FPS` : "– FPS";
  $("stats").textContent = `${running} · ${ms.toFixed(1)} ms per frame · ${rate} · ${frames} frames`;
  $("stats").dataset.frames = frames;
}

/** Runs the current mode on one frame and draws the result over it. */
async function process(source, width, height) {
  try {
    const start = performance.now();
    const c = mode !== "detect" ? await classifier.classify(source) : null;
    const d = mode !== "classify" ? await detector.detect(source) : null;
    const ms = performance.now() - start;
    overlay.width = width;
    overlay.height = height;
    ctx.clearRect(0, 0, width, height);
    if (d) drawDetections(ctx, d.detections);
    if (c) drawClasses(c.classes, width, height);
    listResults(c?.classes, d?.detections);
    showStats(ms, (c ?? d).backend);
    showMessage("");
  } catch (e) {
    showMessage(`${e.name}: ${e.message}`);
  }
}

/** One frame in flight at a time: the next frame is requested only after this one is done. */
async function loop() {
  if (!stream) return;
  if (ready() && video.readyState >= 2) await process(video, video.videoWidth, video.videoHeight);
  if (stream) requestAnimationFrame(loop);
}

async function startCamera() {
  showMessage("");
  if (!navigator.mediaDevices?.getUserMedia) {
    showMessage("This browser cannot access a camera (navigator.mediaDevices is missing; is the page served over https or localhost?).");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    stream = null;
    const denied = e.name === "NotAllowedError" || e.name === "SecurityError";
    showMessage(
      denied
        ? "Camera access was denied. Allow it in the browser's site settings, or pick an image instead."
        : e.name === "NotFoundError"
          ? "No camera was found. Pick an image instead."
          : `The camera could not be started: ${e.name}: ${e.message}`,
    );
    setEnabled();
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  still.hidden = true;
  await video.play();
  setEnabled();
  frames = 0;
  lastFrameAt = 0;
  requestAnimationFrame(loop);
}

function stopCamera() {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  video.srcObject = null;
  setEnabled();
}

async function showImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    showMessage("That is not an image file.");
    return;
  }
  stopCamera();
  const url = URL.createObjectURL(file);
  still.src = url;
  try {
    await still.decode();
  } catch {
    showMessage("The image could not be decoded.");
    return;
  } finally {
    URL.revokeObjectURL(url);
  }
  video.hidden = true;
  still.hidden = false;
  await process(still, still.naturalWidth, still.naturalHeight);
}

async function applyDetectorOptions() {
  $("score-value").textContent = Number($("score").value).toFixed(2);
  try {
    await detector?.setOptions(detectorOptions());
    showMessage("");
    if (!stream && !still.hidden && ready()) await process(still, still.naturalWidth, still.naturalHeight);
  } catch (e) {
    showMessage(`${e.name}: ${e.message}`);
  }
}

$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);
$("file").addEventListener("change", (e) => showImage(e.target.files[0]));
$("backend").addEventListener("change", (e) => {
  backend = e.target.value;
  load();
});
$("mode").addEventListener("change", (e) => {
  mode = e.target.value;
  load();
});
$("score").addEventListener("input", applyDetectorOptions);
$("max-results").addEventListener("change", applyDetectorOptions);
const stage = $("stage");
stage.addEventListener("dragover", (e) => {
  e.preventDefault();
  stage.classList.add("dragging");
});
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (e) => {
  e.preventDefault();
  stage.classList.remove("dragging");
  if (ready()) showImage(e.dataTransfer.files[0]);
});

$("backend").value = backend;
$("mode").value = mode;
load();
