// Drawing on canvases: the boundary heatmap with its points, the network diagram, the loss chart.
// Colours: orange for negative / class 0, blue for positive / class 1 (TensorFlow Playground's pair,
// readable by colour-blind viewers); more classes take the Okabe-Ito palette.
"use strict";

const Draw = (() => {
  const ORANGE = [245, 147, 34], BLUE = [8, 119, 189], WHITE = [232, 234, 235];
  const CLASS_COLOURS = [[245, 147, 34], [8, 119, 189], [0, 158, 115], [204, 121, 167], [86, 180, 233],
    [213, 94, 0], [240, 228, 66], [90, 90, 90]];

  function decode(b64, Type) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new Type(bytes.buffer);
  }

  function mix(a, b, t) {
    return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
  }

  // value in [-1, 1] -> orange .. white .. blue
  function diverging(value) {
    return value < 0 ? mix(WHITE, ORANGE, Math.min(-value, 1)) : mix(WHITE, BLUE, Math.min(value, 1));
  }

  function classColour(index, numClasses, task) {
    if (task === "regression") return diverging(index);
    return CLASS_COLOURS[index % CLASS_COLOURS.length];
  }

  const scratch = document.createElement("canvas");

  // The boundary: 8-bit probabilities (binary), winning class + confidence (multiclass) or scaled values.
  function boundaryImage(boundary, task, discretize) {
    const n = boundary.resolution;
    scratch.width = n; scratch.height = n;
    const context = scratch.getContext("2d");
    const image = context.createImageData(n, n);
    const p = decode(boundary.p, Uint8Array);
    const cls = boundary.class ? decode(boundary.class, Uint8Array) : null;
    for (let i = 0; i < n * n; i++) {
      let colour;
      if (task === "multiclass") {
        const confidence = discretize ? 1 : Math.max(0, (p[i] / 255 - 0.3) / 0.7);
        colour = mix(WHITE, CLASS_COLOURS[cls[i] % CLASS_COLOURS.length], 0.25 + 0.55 * confidence);
      } else {
        let value = p[i] / 127.5 - 1;  // -1 .. 1
        if (discretize) value = value >= 0 ? 1 : -1;
        colour = diverging(value * 0.85);
      }
      image.data.set([colour[0], colour[1], colour[2], 255], i * 4);
    }
    context.putImageData(image, 0, 0);
    return scratch;
  }

  function boundary(canvas, state, frame) {
    const context = canvas.getContext("2d");
    const { width, height } = canvas;
    context.imageSmoothingEnabled = !state.discretize;
    context.drawImage(boundaryImage(frame.boundary, state.data.task, state.discretize), 0, 0, width, height);
    const [u0, u1, v0, v1] = state.data.extent;
    const toX = (u) => (u - u0) / (u1 - u0) * width, toY = (v) => (v1 - v) / (v1 - v0) * height;
    const splits = state.showTest ? ["train", "test"] : ["train"];
    const task = state.data.task;
    let low = 0, high = 1;
    if (task === "regression") {
      const all = state.data.points.train.label.concat(state.data.points.test.label);
      low = Math.min(...all); high = Math.max(...all);
    }
    for (const split of splits) {
      const points = state.data.points[split];
      for (let i = 0; i < points.u.length; i++) {
        const label = points.label[i];
        const colour = task === "regression" ? diverging(((label - low) / (high - low || 1)) * 2 - 1)
          : classColour(label, 0, task);
        context.beginPath();
        context.arc(toX(points.u[i]), toY(points.v[i]), split === "train" ? 4 : 4.5, 0, 2 * Math.PI);
        context.fillStyle = `rgb(${colour.map(Math.round).join(",")})`;
        context.fill();
        context.lineWidth = split === "train" ? 1 : 2;
        context.strokeStyle = split === "train" ? "white" : "black";
        context.stroke();
      }
    }
    if (state.explained) {
      const { u, v } = state.explained;
      context.beginPath();
      context.arc(toX(u), toY(v), 7, 0, 2 * Math.PI);
      context.lineWidth = 2.5; context.strokeStyle = "#222"; context.stroke();
    }
  }

  // The network: columns of nodes (inputs, hidden layers, output) and one edge per weight.
  function layout(canvas, sizes) {
    const { width, height } = canvas;
    const columns = sizes.length;
    const largest = Math.max(...sizes);
    const node = Math.max(6, Math.min(34, (height - 20) / largest - 4));
    const gap = Math.min(8, Math.max(1, node / 4));
    const left = 70, right = width - 30;
    const positions = sizes.map((count, c) => {
      const x = columns === 1 ? left : left + (right - left) * c / (columns - 1);
      const total = count * node + (count - 1) * gap;
      const top = (height - total) / 2;
      return Array.from({ length: count }, (_, i) => ({ x, y: top + i * (node + gap) + node / 2 }));
    });
    return { node, positions };
  }

  function network(canvas, state, frame) {
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const sizes = state.data.sizes;
    const geometry = layout(canvas, sizes);
    const weights = frame.weights.map((layer) => ({ w: decode(layer.w, Float32Array), b: decode(layer.b, Float32Array),
      rows: layer.shape[0], cols: layer.shape[1] }));
    let largest = 1e-9;
    for (const layer of weights) for (const value of layer.w) largest = Math.max(largest, Math.abs(value));
    // edges, bucketed by colour and width: a few strokes instead of one per weight
    const buckets = new Map();
    const edges = [];
    weights.forEach((layer, k) => {
      for (let j = 0; j < layer.rows; j++) {
        for (let i = 0; i < layer.cols; i++) {
          const value = layer.w[j * layer.cols + i];
          const from = geometry.positions[k][i], to = geometry.positions[k + 1][j];
          const width = Math.max(0.5, Math.round(6 * Math.abs(value) / largest * 2) / 2);
          const key = `${value >= 0 ? "p" : "n"}${width}`;
          if (!buckets.has(key)) buckets.set(key, []);
          buckets.get(key).push(from.x + geometry.node / 2, from.y, to.x - geometry.node / 2, to.y);
          edges.push({ k, i, j, value, x0: from.x + geometry.node / 2, y0: from.y, x1: to.x - geometry.node / 2, y1: to.y });
        }
      }
    });
    for (const [key, lines] of buckets) {
      context.beginPath();
      for (let n = 0; n < lines.length; n += 4) { context.moveTo(lines[n], lines[n + 1]); context.lineTo(lines[n + 2], lines[n + 3]); }
      context.strokeStyle = key[0] === "p" ? "rgba(8,119,189,0.75)" : "rgba(245,147,34,0.75)";
      context.lineWidth = parseFloat(key.slice(1));
      context.stroke();
    }
    // nodes: inputs named, hidden units with their own output over the view, output with the boundary
    const size = geometry.node;
    const units = frame.units;
    const unitCanvas = document.createElement("canvas");
    unitCanvas.width = units.resolution; unitCanvas.height = units.resolution;
    const unitContext = unitCanvas.getContext("2d");
    const nodes = [];
    geometry.positions.forEach((column, c) => {
      const images = c > 0 && c < sizes.length - 1 ? decode(units.layers[c - 1].images, Int8Array) : null;
      column.forEach((position, i) => {
        const x = position.x - size / 2, y = position.y - size / 2;
        if (images) {
          const pixels = units.resolution * units.resolution;
          const image = unitContext.createImageData(units.resolution, units.resolution);
          for (let p = 0; p < pixels; p++) {
            const colour = diverging(images[i * pixels + p] / 127);
            image.data.set([colour[0], colour[1], colour[2], 255], p * 4);
          }
          unitContext.putImageData(image, 0, 0);
          context.drawImage(unitCanvas, x, y, size, size);
        } else if (c === sizes.length - 1) {
          context.drawImage(boundaryImage(frame.boundary, state.data.task, state.discretize), x, y, size, size);
        } else {
          context.fillStyle = "#f4f4f4";
          context.fillRect(x, y, size, size);
        }
        context.strokeStyle = "#555"; context.lineWidth = 1;
        context.strokeRect(x, y, size, size);
        if (c === 0) {
          context.fillStyle = "#333"; context.font = "12px sans-serif"; context.textAlign = "right";
          context.fillText(state.data.inputs[i] || "", x - 4, position.y + 4);
        }
        nodes.push({ c, i, x, y, size });
      });
    });
    return { nodes, edges, weights, units };
  }

  function chart(canvas, history) {
    const context = canvas.getContext("2d");
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    if (history.length < 1) return;
    let top = 1e-9;
    for (const point of history) top = Math.max(top, point.train ?? 0, point.test ?? 0);
    const lastEpoch = Math.max(1, history[history.length - 1].epoch);
    const x = (epoch) => 4 + (width - 8) * epoch / lastEpoch, y = (value) => height - 4 - (height - 8) * value / top;
    for (const [key, colour] of [["train", "#333"], ["test", "#999"]]) {
      context.beginPath();
      history.forEach((point, n) => {
        if (point[key] == null) return;
        if (n === 0) context.moveTo(x(point.epoch), y(point[key])); else context.lineTo(x(point.epoch), y(point[key]));
      });
      context.strokeStyle = colour; context.lineWidth = 1.5; context.stroke();
    }
  }

  return { decode, boundary, network, chart, classColour, layout };
})();
