package com.edgeenhance.demo

import android.content.Context
import android.graphics.Bitmap
import android.util.Log
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/**
 * The bilateral model's grid form as deployed: resize the frame to the network's input (128x128 for the shipped model),
 * run LiteRT (GPU delegate, falling back to XNNPACK on the CPU), slice the grid at full resolution.
 * The model takes float32 input and returns the grid, both channel-last (NHWC: (1, n, n, 3) in,
 * (1, g, g, 12*bins) out; the export default) or channel-first (NCHW, export --layout nchw), as
 * manifest.json says.
 */
class Enhancer(context: Context, assetDir: String = "models", precision: String = "int8", threads: Int = 4) :
    AutoCloseable {
    val manifest = ModelManifest(context.assets.open("$assetDir/manifest.json").bufferedReader().readText())
    private val entry = manifest.tflite(precision) ?: manifest.tflite("fp32")
        ?: error("no TFLite model in $assetDir/manifest.json")
    private var gpu: GpuDelegate? = null
    val delegateName: String
    private val interpreter: Interpreter
    private val slicer = GridSlicer(manifest.guide ?: error("manifest has no guide (export --form grid)"), threads)
    private val nhwc = entry.channelsLast
    private val lowres = if (nhwc) entry.inputShape[1] else entry.inputShape[2]
    private val gridC = entry.outputShape[if (nhwc) 3 else 1]
    private val gridH = entry.outputShape[if (nhwc) 1 else 2]; private val gridW = entry.outputShape[if (nhwc) 2 else 3]
    private val input = ByteBuffer.allocateDirect(4 * 3 * lowres * lowres).order(ByteOrder.nativeOrder())
    private val output = ByteBuffer.allocateDirect(4 * gridC * gridH * gridW).order(ByteOrder.nativeOrder())
    var lastNetworkMs = 0.0; private set
    var lastSliceMs = 0.0; private set

    init {
        val model = loadAsset(context, "$assetDir/${entry.file}")
        val opts = Interpreter.Options().setNumThreads(threads)
        var name = "CPU (XNNPACK)"
        if (CompatibilityList().isDelegateSupportedOnThisDevice) {
            try {
                gpu = GpuDelegate(CompatibilityList().bestOptionsForThisDevice)
                opts.addDelegate(gpu)
                name = "GPU"
            } catch (e: Exception) {
                Log.w("Enhancer", "GPU delegate unavailable, using CPU", e)
            }
        }
        interpreter = try {
            Interpreter(model, opts)
        } catch (e: Exception) {  // GPU delegate refused the graph: CPU fallback
            gpu?.close(); gpu = null; name = "CPU (XNNPACK)"
            Interpreter(model, Interpreter.Options().setNumThreads(threads))
        }
        delegateName = name
    }

    /** Enhance interleaved RGB floats (H, W, 3) in [0, 1] into [out]. */
    fun enhance(rgb: FloatArray, h: Int, w: Int, out: FloatArray) {
        input.rewind()
        // Bilinear resize with half-pixel centres, written in the model's layout.
        val plane = lowres * lowres
        for (y in 0 until lowres) for (x in 0 until lowres) for (c in 0 until 3) {
            val sy = maxOf(0f, (y + 0.5f) * h / lowres - 0.5f); val sx = maxOf(0f, (x + 0.5f) * w / lowres - 0.5f)
            val y0 = minOf(sy.toInt(), h - 1); val x0 = minOf(sx.toInt(), w - 1)
            val y1 = minOf(y0 + 1, h - 1); val x1 = minOf(x0 + 1, w - 1)
            val fy = sy - y0; val fx = sx - x0
            fun px(yy: Int, xx: Int) = rgb[(yy * w + xx) * 3 + c]
            val v = (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) + (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy
            val at = if (nhwc) (y * lowres + x) * 3 + c else c * plane + y * lowres + x
            input.putFloat(4 * at, v)
        }
        input.rewind(); output.rewind()
        val t0 = System.nanoTime()
        interpreter.run(input, output)
        val t1 = System.nanoTime()
        output.rewind()
        val raw = FloatArray(gridC * gridH * gridW).also { output.asFloatBuffer().get(it) }
        // GridSlicer reads channel-major (C, gh, gw); reorder a channel-last grid (24k values).
        val grid = if (!nhwc) raw else FloatArray(raw.size).also { g ->
            val cells = gridH * gridW
            for (i in 0 until cells) for (c in 0 until gridC) g[c * cells + i] = raw[i * gridC + c]
        }
        slicer.slice(rgb, h, w, grid, gridH, gridW, out)
        lastNetworkMs = (t1 - t0) / 1e6; lastSliceMs = (System.nanoTime() - t1) / 1e6
    }

    fun enhance(bitmap: Bitmap): Bitmap {
        val w = bitmap.width; val h = bitmap.height
        val px = IntArray(w * h).also { bitmap.getPixels(it, 0, w, 0, 0, w, h) }
        val rgb = FloatArray(w * h * 3)
        for (i in px.indices) {
            rgb[3 * i] = (px[i] shr 16 and 0xff) / 255f; rgb[3 * i + 1] = (px[i] shr 8 and 0xff) / 255f
            rgb[3 * i + 2] = (px[i] and 0xff) / 255f
        }
        val out = FloatArray(rgb.size)
        enhance(rgb, h, w, out)
        for (i in px.indices) {
            px[i] = (0xff shl 24) or ((out[3 * i] * 255 + 0.5f).toInt() shl 16) or
                ((out[3 * i + 1] * 255 + 0.5f).toInt() shl 8) or (out[3 * i + 2] * 255 + 0.5f).toInt()
        }
        return Bitmap.createBitmap(px, w, h, Bitmap.Config.ARGB_8888)
    }

    override fun close() { interpreter.close(); gpu?.close(); slicer.close() }

    companion object {
        fun loadAsset(context: Context, path: String): MappedByteBuffer =
            context.assets.openFd(path).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }
    }
}
