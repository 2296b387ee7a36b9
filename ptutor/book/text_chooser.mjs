// A kernel-free "pick options, read the text" widget (anywidget ES module).
//
// Python (`ptutor.book.widgets.text_chooser`) computes the text for every combination of the
// options and saves them in the widget state (`texts`, keyed by the chosen option labels
// joined with a tab), so a static page only has to look the text up.

const SEP = "\t";

function el(tag, props = {}, children = []) {
  const { dataset = {}, style = "", ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  for (const [key, value] of Object.entries(dataset)) node.dataset[key] = value; // dataset is read-only
  if (style) node.setAttribute("style", style);
  for (const child of children) node.append(child);
  return node;
}

function render({ model, el: root }) {
  const controls = model.get("controls") || []; // [[label, [option labels]], ...]
  const selects = controls.map(([label, options], i) => {
    const select = el("select", { dataset: { index: String(i) } },
      options.map((o) => el("option", { value: o, textContent: o })));
    select.addEventListener("change", () => {
      const chosen = [...(model.get("chosen") || [])];
      chosen[i] = select.value;
      model.set("chosen", chosen);
      model.save_changes();
    });
    return [label, select];
  });
  const text = el("pre", { className: "ptutor-chooser-text" });
  root.append(el("div", { className: "ptutor-chooser" }, [
    ...selects.map(([label, select]) => el("label", { style: "display:block;margin:2px 0" }, [
      el("span", { textContent: `${label} `, style: "display:inline-block;min-width:7em" }), select])),
    text]));
  const refresh = () => {
    const chosen = model.get("chosen") || [];
    selects.forEach(([, select], i) => { if (select.value !== chosen[i]) select.value = chosen[i]; });
    const texts = model.get("texts") || {};
    const key = chosen.join(SEP);
    text.textContent = key in texts ? texts[key] : `!! no text for ${chosen.join(" / ")}`;
  };
  model.on("change:chosen", refresh);
  refresh();
  return () => model.off("change:chosen", refresh);
}

export default { render };
