package com.edgeenhance.demo

import org.json.JSONObject

/** The parts of `edgeenhance export`'s manifest.json the app needs. */
data class GuideParams(
    val w1: Array<FloatArray>, val b1: FloatArray, val w2: FloatArray, val b2: Float,
    val bins: Int, val minIllumination: Float, val gridScale: FloatArray, val gridOffset: FloatArray,
    /** "linear" guide: clamp(w1[0] . rgb + b1[0], 0, 1) instead of sigmoid(w2 . relu(w1 rgb + b1) + b2). */
    val linear: Boolean = false,
) {
    companion object {
        fun fromJson(g: JSONObject): GuideParams {
            fun arr(name: String) = g.getJSONArray(name).let { a -> FloatArray(a.length()) { a.getDouble(it).toFloat() } }
            val w1 = g.getJSONArray("w1").let { a ->
                Array(a.length()) { i -> a.getJSONArray(i).let { r -> FloatArray(r.length()) { r.getDouble(it).toFloat() } } }
            }
            val w2 = g.getJSONArray("w2").getJSONArray(0).let { r -> FloatArray(r.length()) { r.getDouble(it).toFloat() } }
            return GuideParams(
                w1, arr("b1"), w2, g.getJSONArray("b2").getDouble(0).toFloat(), g.getInt("bins"),
                g.optDouble("min_illumination", 0.05).toFloat(), arr("grid_scale"), arr("grid_offset"),
                g.optString("guide", "mlp") == "linear",
            )
        }
    }
}

data class ModelEntry(val file: String, val target: String, val precision: String, val inputShape: IntArray,
                      val outputShape: IntArray, val layout: String = "NCHW") {
    /** True for channel-last (NHWC) tensors, the TFLite export default. */
    val channelsLast: Boolean get() = layout == "NHWC"
}

class ModelManifest(json: String) {
    private val root = JSONObject(json)
    val model: String = root.getString("model")
    val form: String = root.getString("form")
    val guide: GuideParams? = root.optJSONObject("extras")?.optJSONObject("guide")?.let { GuideParams.fromJson(it) }
    val files: List<ModelEntry> = root.getJSONArray("files").let { a ->
        (0 until a.length()).map { i ->
            val e = a.getJSONObject(i)
            fun shape(k: String) = e.getJSONObject(k).getJSONArray("shape").let { s -> IntArray(s.length()) { s.optInt(it, -1) } }
            ModelEntry(e.getString("file"), e.getString("target"), e.getString("precision"), shape("input"), shape("output"),
                e.getJSONObject("input").optString("layout", "NCHW"))
        }
    }
    fun tflite(precision: String): ModelEntry? = files.firstOrNull { it.target == "tflite" && it.precision == precision }
}
