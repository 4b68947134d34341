// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { type Theme, ThemeTracker, readTheme } from "../src/theme";

describe("ThemeTracker", () => {
  it("repaints only when forced or the theme changed, and rebuilds only when it changed", () => {
    const el = document.body.appendChild(document.createElement("div"));
    el.style.backgroundColor = "rgb(255, 255, 255)";
    el.style.color = "rgb(31, 35, 40)";
    const rebuilt: Theme[] = [];
    const tracker = new ThemeTracker();
    const next = (force: boolean) => tracker.next(el, force, (theme) => rebuilt.push(theme));

    const first = next(false); // nothing painted yet: a repaint and a rebuild
    expect(first).toEqual(readTheme(el));
    expect(first!.dark).toBe(false);
    expect(rebuilt).toEqual([first]);
    expect(next(false)).toBeNull(); // same theme: nothing to repaint
    expect(next(true)).toEqual(first); // forced: repaint, the palettes kept
    expect(rebuilt).toHaveLength(1);

    el.style.backgroundColor = "rgb(0, 0, 0)";
    el.style.color = "rgb(255, 255, 255)";
    const dark = next(false);
    expect(dark).toEqual({ background: [0, 0, 0], text: [255, 255, 255], dark: true });
    expect(rebuilt).toEqual([first, dark]);
    expect(next(false)).toBeNull();
    el.remove();
  });
});
