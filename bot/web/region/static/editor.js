// Vary (Region) editor: paint a mask over the image (brush or rectangle, undo, clear) and
// submit it as a PNG of the image's own size, white where to repaint, black elsewhere.
"use strict";

(function () {
  const canvas = document.getElementById("mask");
  const context = canvas.getContext("2d");
  const form = document.getElementById("edit");
  const status = document.getElementById("status");
  const size = document.getElementById("size");
  const tools = { brush: document.getElementById("brush"), rect: document.getElementById("rect") };
  // Every change is kept as an operation, so undo redraws the rest.
  const operations = [];
  let tool = "brush";
  let current = null;

  function brushWidth() {
    // The slider is a share of the image's shorter side, so it feels the same on any image.
    return Math.max(1, (Number(size.value) / 100) * Math.min(canvas.width, canvas.height) * 0.5);
  }

  function point(event) {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  }

  function draw(operation) {
    context.fillStyle = "#ffffff";
    context.strokeStyle = "#ffffff";
    if (operation.kind === "clear") {
      context.clearRect(0, 0, canvas.width, canvas.height);
    } else if (operation.kind === "rect") {
      const { from, to } = operation;
      context.fillRect(
        Math.min(from.x, to.x),
        Math.min(from.y, to.y),
        Math.abs(to.x - from.x),
        Math.abs(to.y - from.y)
      );
    } else {
      context.lineWidth = operation.width;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.beginPath();
      const [first, ...rest] = operation.points;
      context.moveTo(first.x, first.y);
      // A lone point still leaves a dot.
      context.lineTo(first.x + 0.01, first.y);
      for (const p of rest) {
        context.lineTo(p.x, p.y);
      }
      context.stroke();
    }
  }

  function redraw() {
    context.clearRect(0, 0, canvas.width, canvas.height);
    for (const operation of operations) {
      draw(operation);
    }
    if (current !== null) {
      draw(current);
    }
  }

  function choose(name) {
    tool = name;
    for (const [key, button] of Object.entries(tools)) {
      button.setAttribute("aria-pressed", String(key === name));
    }
  }

  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    const at = point(event);
    current =
      tool === "rect"
        ? { kind: "rect", from: at, to: at }
        : { kind: "brush", width: brushWidth(), points: [at] };
    redraw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (current === null) {
      return;
    }
    const at = point(event);
    if (current.kind === "rect") {
      current.to = at;
    } else {
      current.points.push(at);
    }
    redraw();
  });
  function finish() {
    if (current !== null) {
      operations.push(current);
      current = null;
      redraw();
    }
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  tools.brush.addEventListener("click", () => choose("brush"));
  tools.rect.addEventListener("click", () => choose("rect"));
  document.getElementById("undo").addEventListener("click", () => {
    operations.pop();
    redraw();
  });
  document.getElementById("clear").addEventListener("click", () => {
    operations.push({ kind: "clear" });
    redraw();
  });

  function painted() {
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) {
      if (pixels[i] >= 128) {
        return true;
      }
    }
    return false;
  }

  function maskBlob() {
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const outContext = out.getContext("2d");
    outContext.fillStyle = "#000000";
    outContext.fillRect(0, 0, out.width, out.height);
    outContext.drawImage(canvas, 0, 0);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!painted()) {
      status.textContent = "Paint over the part of the image to change first.";
      return;
    }
    const button = document.getElementById("submit");
    button.disabled = true;
    status.textContent = "Sending…";
    const data = new FormData(form);
    data.append("mask", await maskBlob(), "mask.png");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
      });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const message = page.getElementById("message");
      if (response.ok) {
        document.body.replaceChildren(...page.body.childNodes);
        document.title = page.title;
      } else {
        status.textContent = message ? message.textContent : "The editor refused: " + response.status;
        button.disabled = false;
      }
    } catch (error) {
      status.textContent = "Could not reach the server: " + error;
      button.disabled = false;
    }
  });
})();
