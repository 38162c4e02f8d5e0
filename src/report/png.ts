// SVG -> PNG with resvg (@resvg/resvg-js): its platform binary ships inside the npm
// package, so installing needs no download, no browser and no system graphics library.
// Text uses the system fonts (Debian's fonts-dejavu-core provides the default face).

import { Resvg } from "@resvg/resvg-js";

/** Rasterises at twice the SVG's size so the curves stay sharp on high-density screens. */
export function svgToPng(svg: string): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
    background: "#ffffff",
  });
  return resvg.render().asPng();
}
