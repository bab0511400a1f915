// The demo page: webcam or image → classifier and/or detector → results drawn over the picture.
import { ImageClassifier, ObjectDetector, drawDetections, drawHeatmap } from "../lib/sightline.js";

const $ = (id) => document.getElementById(id);
const video = $("video");
const still = $("still");
const overlay = $("overlay");
const ctx = overlay.getContext("2d");

const params = new URLSearchParams(location.search);
let mode = params.get("mode") ?? "classify";
let backend = params.get("backend") ?? "auto";
/** The loaded tasks, each tagged with the backend it was created for. */
const tasks = { classifier: null, detector: null };
let stream = null;
let watcher = null;
let frames = 0;
let generation = 0;
/** The latest classes in "both" mode (classification runs beside the detector's watch). */
let latestClasses = null;
let classifying = false;
/** Explain mode: the latest heat map, refreshed beside the live results. */
let latestExplanation = null;
let explaining = false;
/** Teach mode: the trainer (on the current classifier) and the classifier over the user's classes. */
let trainer = null;
let custom = null;
let useCustom = false;
/** The head file of `custom` (trained here or imported), for "Export head". */
let customHead = null;

/** The classifier in use: the user's classes when chosen and trained, else ImageNet. */
function classifier() {
  return useCustom && custom ? custom : tasks.classifier;
}

function setStatus(text, state = "ready") {
  if (state !== "loading") $("load-progress").hidden = true;
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function wanted() {
  return { classifier: mode !== "detect", detector: mode !== "classify" };
}

function ready() {
  const want = wanted();
  return (!want.classifier || tasks.classifier) && (!want.detector || tasks.detector);
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

/** Open instances, shown in `data-open-tasks` (the tests check superseded loads are closed). */
let openTasks = 0;
function countOpen(delta) {
  openTasks += delta;
  document.body.dataset.openTasks = String(openTasks);
}

/** The status line and the progress bar (bytes of a download; hidden otherwise and from the cache). */
function showProgress(kind, event) {
  setStatus(progressText(kind, event), "loading");
  const bar = $("load-progress");
  const downloading = (event.stage === "wasm" || event.stage === "weights") && !event.fromCache && event.total > 0;
  bar.hidden = !downloading;
  if (downloading) bar.value = event.loaded / event.total;
}

/** A load step for the status line, e.g. "Loading the detector: weights 45 % of 7.6 MB". */
function progressText(kind, { stage, loaded, total, fromCache }) {
  const what = { wasm: "runtime", weights: "weights", compile: "building the network", warmup: "warming up" }[stage];
  if (stage === "compile" || stage === "warmup") return `Loading the ${kind}: ${what}…`;
  if (fromCache) return `Loading the ${kind}: ${what} from this browser's cache`;
  const share = total > 0 ? ` ${Math.floor((100 * loaded) / total)} % of ${(total / 1e6).toFixed(1)} MB` : "";
  return `Loading the ${kind}: ${what}${share}`;
}

/**
 * (Re)loads what the current mode needs on the current backend. A load superseded by a newer one
 * (the backend or mode changed meanwhile) closes what it created and gives way.
 */
async function load() {
  const mine = ++generation;
  stopWatching();
  setEnabled();
  setStatus(`Loading (${mode} on ${backend})…`, "loading");
  try {
    const want = wanted();
    for (const [kind, Task, options] of [
      ["classifier", ImageClassifier, { maxResults: 5 }],
      ["detector", ObjectDetector, detectorOptions()],
    ]) {
      const current = tasks[kind];
      if (current && current.requested !== backend) {
        tasks[kind] = null;
        if (kind === "classifier") await forgetTeaching("the backend changed: teach your classes again");
        await current.close();
        countOpen(-1);
      }
      if (want[kind] && !tasks[kind]) {
        const onProgress = (event) => mine === generation && showProgress(kind, event);
        const task = await Task.create({ backend, ...options, onProgress });
        countOpen(1);
        if (mine !== generation) {
          await task.close();
          countOpen(-1);
          return;
        }
        task.requested = backend;
        tasks[kind] = task;
      }
    }
    const running = (mode === "detect" ? tasks.detector : tasks.classifier).backend;
    const reason = (tasks.classifier ?? tasks.detector).backendReason;
    const cached = Object.values(tasks).some((t) => t?.loadTimings.weightsFromCache) ? "; weights from this browser's cache" : "";
    setStatus(`Ready: ${mode} on ${running} — ${reason}${cached}`, "ready");
    $("status").dataset.backend = running;
    if (stream) startWatching();
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

function showStats(ms, running, info) {
  frames += 1;
  const rate = info ? `${info.fps.toFixed(1)} FPS · ${info.droppedFrames} dropped` : "single image";
  $("stats").textContent = `${running} · ${ms.toFixed(1)} ms per frame · ${rate} · ${frames} frames`;
  $("stats").dataset.frames = frames;
}

/** Draws one frame's results over the picture. */
function show(width, height, classes, detections, ms, running, info) {
  overlay.width = width;
  overlay.height = height;
  ctx.clearRect(0, 0, width, height);
  if (explainOn() && latestExplanation && classes) drawHeatmap(ctx, latestExplanation, { alpha: 0.45 });
  if (detections) drawDetections(ctx, detections);
  if (classes) drawClasses(classes, width, height);
  listResults(classes, detections);
  showStats(ms, running, info);
  showMessage("");
}

/** Runs the current mode on a still image and draws the result over it. */
async function processStill() {
  try {
    const start = performance.now();
    const c = tasks.classifier && mode !== "detect" ? await classifier().classify(still) : null;
    latestExplanation = c && explainOn() ? await classifier().explain(still) : null;
    const d = tasks.detector && mode !== "classify" ? await tasks.detector.detect(still) : null;
    show(still.naturalWidth, still.naturalHeight, c?.classes, d?.detections, performance.now() - start, (c ?? d).backend);
  } catch (e) {
    showMessage(`${e.name}: ${e.message}`);
  }
}

/** Live video through `watch()`: the library keeps one frame in flight and drops stale ones. */
function startWatching() {
  stopWatching();
  if (!ready() || !stream) return;
  frames = 0;
  const onError = (e) => showMessage(`${e.name}: ${e.message}`);
  const size = () => [video.videoWidth, video.videoHeight];
  if (mode === "classify") {
    const active = classifier();
    latestExplanation = null;
    watcher = active.watch(
      video,
      (r, info) => {
        if (explainOn() && !explaining) {
          explaining = true;
          active
            .explain(video)
            .then((e) => (latestExplanation = e), onError)
            .finally(() => (explaining = false));
        }
        show(...size(), r.classes, null, info.inferenceMs, r.backend, info);
      },
      { onError },
    );
    return;
  }
  latestClasses = null;
  watcher = tasks.detector.watch(
    video,
    (r, info) => {
      if (mode === "both" && !classifying) {
        classifying = true;
        classifier()
          .classify(video)
          .then((c) => (latestClasses = c.classes), onError)
          .finally(() => (classifying = false));
      }
      show(...size(), mode === "both" ? latestClasses : null, r.detections, info.inferenceMs, r.backend, info);
    },
    { onError },
  );
}

function stopWatching() {
  watcher?.stop();
  watcher = null;
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
  startWatching();
}

function stopCamera() {
  stopWatching();
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
  await processStill();
}

async function applyDetectorOptions() {
  $("score-value").textContent = Number($("score").value).toFixed(2);
  try {
    await tasks.detector?.setOptions(detectorOptions());
    showMessage("");
    if (!stream && !still.hidden && ready()) await processStill();
  } catch (e) {
    showMessage(`${e.name}: ${e.message}`);
  }
}

function explainOn() {
  return $("explain").checked && mode !== "detect";
}

// ---- Teach mode ------------------------------------------------------------------------------

const MAX_CLASSES = 5;

function teachStatus(text) {
  $("teach-status").textContent = text;
}

/** The class rows: a name field, a capture button and the example count. */
function addClassRow(name) {
  const list = $("teach-classes");
  if (list.children.length >= MAX_CLASSES) return;
  const li = document.createElement("li");
  const input = Object.assign(document.createElement("input"), { value: name, maxLength: 100, ariaLabel: "class name" });
  const button = Object.assign(document.createElement("button"), { textContent: "Hold to capture" });
  const count = Object.assign(document.createElement("span"), { className: "count", textContent: "0 examples" });
  input.addEventListener("change", () => renameClass(input));
  input.dataset.label = name;
  let holding = false;
  const capture = async () => {
    holding = true;
    do {
      await captureExample(input.dataset.label, count);
      await new Promise((r) => setTimeout(r, 120));
    } while (holding && stream);
  };
  button.addEventListener("pointerdown", capture);
  for (const end of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(end, () => (holding = false));
  li.append(input, " ", button, " ", count);
  list.append(li);
  $("teach-add").disabled = list.children.length >= MAX_CLASSES;
}

/** A renamed class keeps nothing: its old examples go (labels are the names). */
function renameClass(input) {
  const old = input.dataset.label;
  const name = input.value.trim() || old;
  input.value = name;
  if (name === old) return; // e.g. the change event a blur fires after an edit already taken
  trainer?.removeLabel(old);
  input.dataset.label = name;
  input.parentElement.querySelector(".count").textContent = "0 examples";
  updateTeachButtons();
}

async function captureExample(label, countEl) {
  const source = stream ? video : still.hidden ? null : still;
  if (!source || !tasks.classifier) {
    teachStatus("Start the camera or pick an image first.");
    return;
  }
  try {
    trainer ??= await tasks.classifier.createTrainer();
    const n = await trainer.addExample(source, label, { augment: $("teach-augment").checked });
    countEl.textContent = `${n} examples`;
    teachStatus("");
  } catch (e) {
    teachStatus(`${e.name}: ${e.message}`);
  }
  updateTeachButtons();
}

function updateTeachButtons() {
  $("teach-train").disabled = !trainer || trainer.labels.length < 2;
  $("teach-use").disabled = !custom;
  $("teach-export").disabled = !custom;
}

async function train() {
  const bar = $("teach-progress");
  bar.hidden = false;
  const epochs = 50;
  try {
    const start = performance.now();
    const report = await trainer.train({ epochs, onProgress: (e) => (bar.value = e.epoch / epochs) });
    await useClassifier(await trainer.classifier());
    customHead = await trainer.exportHead();
    teachStatus(
      `Trained on ${trainer.labels.map((l) => `${l} (${trainer.count(l)})`).join(", ")} in ` +
        `${(performance.now() - start).toFixed(0)} ms: loss ${report.loss.at(-1).toFixed(3)}, ` +
        `training accuracy ${(report.trainAccuracy * 100).toFixed(0)} %.`,
    );
  } catch (e) {
    teachStatus(`${e.name}: ${e.message}`);
  } finally {
    bar.hidden = true;
  }
}

/** Switches to a classifier over the user's classes (closing the previous one). */
async function useClassifier(next) {
  const previous = custom;
  custom = next;
  useCustom = true;
  $("teach-use").checked = true;
  await previous?.close();
  updateTeachButtons();
  startWatchingOrRedraw();
}

function startWatchingOrRedraw() {
  if (stream) startWatching();
  else if (!still.hidden && ready()) processStill();
}

async function forgetTeaching(why) {
  trainer = null;
  const previous = custom;
  custom = null;
  customHead = null;
  useCustom = false;
  $("teach-use").checked = false;
  await previous?.close();
  for (const count of document.querySelectorAll("#teach-classes .count")) count.textContent = "0 examples";
  if (why) teachStatus(why);
  updateTeachButtons();
}

async function exportHead() {
  const bytes = customHead;
  if (!bytes) return;
  const a = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" })),
    download: "sightline-head.safetensors",
  });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function importHead(file) {
  if (!file) return;
  try {
    const head = new Uint8Array(await file.arrayBuffer());
    const next = await ImageClassifier.create({ backend, head });
    await useClassifier(next);
    customHead = head;
    teachStatus(`Imported a head for ${(await next.classify({ data: new Uint8Array(4), width: 1, height: 1 })).classes.length} classes.`);
  } catch (e) {
    teachStatus(`${e.name}: ${e.message}`);
  }
}

for (const name of ["class 1", "class 2"]) addClassRow(name);
$("teach-add").addEventListener("click", () => addClassRow(`class ${$("teach-classes").children.length + 1}`));
$("teach-train").addEventListener("click", train);
$("teach-use").addEventListener("change", (e) => {
  useCustom = e.target.checked;
  startWatchingOrRedraw();
});
$("teach-export").addEventListener("click", exportHead);
$("teach-import").addEventListener("change", (e) => importHead(e.target.files[0]));
$("explain").addEventListener("change", () => {
  latestExplanation = null;
  startWatchingOrRedraw();
});

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
