package com.edgeenhance.demo

import java.util.concurrent.Executors
import java.util.concurrent.Future
import kotlin.math.exp
import kotlin.math.max
import kotlin.math.min

/**
 * Full-resolution slicing of the bilateral grid on the CPU, the same arithmetic as
 * edgeenhance/runtime/fused_slice.py (checked against the shared slicing_vectors.json).
 * Image: interleaved RGB floats in [0, 1], row-major (H, W, 3). Grid: network output (C, gh, gw)
 * with C = 12 * bins, still normalized (grid = out / scale + offset).
 */
class GridSlicer(private val p: GuideParams, threads: Int = Runtime.getRuntime().availableProcessors()) {
    private val pool = Executors.newFixedThreadPool(max(1, threads))
    private val nThreads = max(1, threads)

    private fun taps(nIn: Int, nOut: Int): Triple<IntArray, IntArray, FloatArray> {
        val i0 = IntArray(nOut); val i1 = IntArray(nOut); val f = FloatArray(nOut)
        for (o in 0 until nOut) {
            val src = max(0f, (o + 0.5f) * (nIn.toFloat() / nOut) - 0.5f)
            val a = min(src.toInt(), nIn - 1)
            i0[o] = a; i1[o] = min(a + 1, nIn - 1); f[o] = src - a
        }
        return Triple(i0, i1, f)
    }

    fun slice(img: FloatArray, h: Int, w: Int, net: FloatArray, gh: Int, gw: Int, out: FloatArray) {
        val bins = p.bins
        val ch = 12 * bins
        // Denormalize and resize along x once: table[(gy * w + x) * ch + c].
        val (x0, x1, fx) = taps(gw, w)
        val table = FloatArray(gh * w * ch)
        for (gy in 0 until gh) for (x in 0 until w) for (c in 0 until ch) {
            val a = net[(c * gh + gy) * gw + x0[x]] / p.gridScale[c] + p.gridOffset[c]
            val b = net[(c * gh + gy) * gw + x1[x]] / p.gridScale[c] + p.gridOffset[c]
            table[(gy * w + x) * ch + c] = a * (1 - fx[x]) + b * fx[x]
        }
        val (y0, y1, fy) = taps(gh, h)
        val futures = ArrayList<Future<*>>()
        val rowsPer = (h + nThreads - 1) / nThreads
        for (t in 0 until nThreads) {
            val start = t * rowsPer; val end = min(h, start + rowsPer)
            if (start >= end) continue
            futures += pool.submit { rows(img, w, table, ch, y0, y1, fy, start, end, out) }
        }
        futures.forEach { it.get() }
    }

    private fun rows(img: FloatArray, w: Int, table: FloatArray, ch: Int, y0: IntArray, y1: IntArray, fy: FloatArray,
                     start: Int, end: Int, out: FloatArray) {
        val bins = p.bins
        val hidden = p.b1.size
        val co = FloatArray(12)
        for (y in start until end) {
            val wy = fy[y]
            for (x in 0 until w) {
                val i = (y * w + x) * 3
                val r = img[i]; val g = img[i + 1]; val b = img[i + 2]
                val guide = if (p.linear) {
                    min(max(p.w1[0][0] * r + p.w1[0][1] * g + p.w1[0][2] * b + p.b1[0], 0f), 1f)
                } else {
                    var acc = p.b2
                    for (k in 0 until hidden) {
                        val v = p.w1[k][0] * r + p.w1[k][1] * g + p.w1[k][2] * b + p.b1[k]
                        if (v > 0) acc += p.w2[k] * v
                    }
                    1f / (1f + exp(-acc))
                }
                val z = min(max(bins * guide - 0.5f, 0f), bins - 1f)
                val z0 = min(z.toInt(), bins - 2)
                val fz = z - z0
                val w00 = (1 - wy) * (1 - fz); val w01 = (1 - wy) * fz; val w10 = wy * (1 - fz); val w11 = wy * fz
                val ra = (y0[y] * w + x) * ch; val rb = (y1[y] * w + x) * ch
                val b0 = z0 * 12; val b1 = b0 + 12
                for (k in 0 until 12) {
                    co[k] = w00 * table[ra + b0 + k] + w01 * table[ra + b1 + k] + w10 * table[rb + b0 + k] + w11 * table[rb + b1 + k]
                }
                for (c in 0 until 3) {
                    val s = max(co[4 * c] * r + co[4 * c + 1] * g + co[4 * c + 2] * b + co[4 * c + 3], p.minIllumination)
                    out[i + c] = min(max(img[i + c] / s, 0f), 1f)
                }
            }
        }
    }

    fun close() = pool.shutdown()
}
