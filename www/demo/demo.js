// The demo page: webcam or image → ImageClassifier → top-5 bars drawn over the picture.
import { ImageClassifier } from "../lib/sightline.js";

const $ = (id) => document.getElementById(id);
const video = $("video");
const still = $("still");
const overlay = $("overlay");
const ctx = overlay.getContext("2d");

let classifier = null;
let stream = null;
let frames = 0;
let lastFrameAt = 0;
let fps = 0;

function setStatus(text, state = "ready") {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setEnabled(ready) {
  $("camera-start").disabled = !ready || stream !== null;
  $("camera-stop").disabled = stream === null;
  $("file").disabled = !ready;
}

async function load(backend) {
  setEnabled(false);
  setStatus(`Loading the model (${backend})…`, "loading");
  await classifier?.close();
  classifier = null;
  try {
    classifier = await ImageClassifier.create({ backend, topK: 5 });
    const why = classifier.fallbackReason ? ` — fell back to CPU: ${classifier.fallbackReason}` : "";
    setStatus(`Ready on ${classifier.backend}${why}`, "ready");
    $("status").dataset.backend = classifier.backend;
  } catch (e) {
    setStatus(`Could not load the model: ${e.name}: ${e.message}`, "error");
  }
  setEnabled(classifier !== null);
}

/** Draws the top classes as probability bars over the picture. */
function drawResult(result, width, height) {
  overlay.width = width;
  overlay.height = height;
  ctx.clearRect(0, 0, width, height);
  const scale = Math.max(1, width / 640);
  const rowH = 22 * scale;
  const barW = Math.min(width * 0.6, 360 * scale);
  ctx.font = `${14 * scale}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  result.classes.forEach((c, i) => {
    const y = 8 * scale + i * rowH;
    ctx.fillStyle = "rgba(0,0,0,.55)";
    ctx.fillRect(8 * scale, y, barW, rowH - 4 * scale);
    ctx.fillStyle = i === 0 ? "rgba(76,175,80,.9)" : "rgba(33,150,243,.8)";
    ctx.fillRect(8 * scale, y, barW * c.score, rowH - 4 * scale);
    ctx.fillStyle = "#fff";
    ctx.fillText(`${(c.score * 100).toFixed(1)}%  ${c.label}`, 12 * scale, y + (rowH - 4 * scale) / 2);
  });
  const list = $("result");
  list.replaceChildren(
    ...result.classes.map((c) => {
      const li = document.createElement("li");
      li.textContent = `${c.label} — ${(c.score * 100).toFixed(1)}%`;
      li.dataset.index = c.index;
      return li;
    }),
  );
  list.dataset.top1 = result.classes[0]?.label ?? "";
  list.dataset.top1Index = result.classes[0]?.index ?? "";
}

function showStats(result) {
  frames += 1;
  const now = performance.now();
  if (lastFrameAt) fps = 0.8 * fps + 0.2 * (1000 / (now - lastFrameAt));
  lastFrameAt = now;
  $("stats").textContent =
    `${result.backend} · ${result.inferenceMs.toFixed(1)} ms per frame · ${fps.toFixed(1)} FPS · ${frames} frames`;
  $("stats").dataset.frames = frames;
}

async function classifyOnce(source, width, height) {
  try {
    const result = await classifier.classify(source);
    drawResult(result, width, height);
    showStats(result);
    showMessage("");
  } catch (e) {
    showMessage(`${e.name}: ${e.message}`);
  }
}

/** One frame in flight at a time: the next frame is requested only after this one is done. */
async function loop() {
  if (!stream || !classifier) return;
  if (video.readyState >= 2) await classifyOnce(video, video.videoWidth, video.videoHeight);
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
    showMessage(denied ? "Camera access was denied. Allow it in the browser's site settings, or pick an image instead."
      : e.name === "NotFoundError" ? "No camera was found. Pick an image instead."
      : `The camera could not be started: ${e.name}: ${e.message}`);
    setEnabled(true);
    return;
  }
  video.srcObject = stream;
  video.hidden = false;
  still.hidden = true;
  await video.play();
  setEnabled(true);
  frames = 0;
  lastFrameAt = 0;
  requestAnimationFrame(loop);
}

function stopCamera() {
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  video.srcObject = null;
  setEnabled(classifier !== null);
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
  await classifyOnce(still, still.naturalWidth, still.naturalHeight);
}

$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);
$("file").addEventListener("change", (e) => showImage(e.target.files[0]));
$("backend").addEventListener("change", (e) => load(e.target.value));
const stage = $("stage");
stage.addEventListener("dragover", (e) => {
  e.preventDefault();
  stage.classList.add("dragging");
});
stage.addEventListener("dragleave", () => stage.classList.remove("dragging"));
stage.addEventListener("drop", (e) => {
  e.preventDefault();
  stage.classList.remove("dragging");
  if (classifier) showImage(e.dataTransfer.files[0]);
});

const initialBackend = new URLSearchParams(location.search).get("backend") ?? "auto";
$("backend").value = initialBackend;
load(initialBackend);
