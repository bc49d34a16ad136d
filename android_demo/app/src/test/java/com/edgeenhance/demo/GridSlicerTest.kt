package com.edgeenhance.demo

import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Test

/** The app's slicing against the vector file that the Python tests check too. */
class GridSlicerTest {
    private fun flatten(a: JSONArray, out: MutableList<Float>) {
        for (i in 0 until a.length()) {
            val v = a.get(i)
            if (v is JSONArray) flatten(v, out) else out += (v as Number).toFloat()
        }
    }

    @Test
    fun matchesSharedVectors() = check("slicing_vectors.json")

    @Test
    fun matchesSharedVectorsWithLinearGuide() = check("slicing_vectors_linear.json")

    private fun check(file: String) {
        val text = javaClass.classLoader!!.getResource(file).readText()
        val v = JSONObject(text)
        val img = mutableListOf<Float>().also { flatten(v.getJSONArray("image_hwc"), it) }.toFloatArray()
        val net = mutableListOf<Float>().also { flatten(v.getJSONArray("network_output_chw"), it) }.toFloatArray()
        val expected = mutableListOf<Float>().also { flatten(v.getJSONArray("expected_hwc"), it) }.toFloatArray()
        val h = v.getJSONArray("image_hwc").length()
        val w = v.getJSONArray("image_hwc").getJSONArray(0).length()
        val grid = v.getJSONArray("network_output_chw")
        val gh = grid.getJSONArray(0).length(); val gw = grid.getJSONArray(0).getJSONArray(0).length()
        val slicer = GridSlicer(GuideParams.fromJson(v.getJSONObject("guide")), threads = 2)
        val out = FloatArray(img.size)
        slicer.slice(img, h, w, net, gh, gw, out)
        for (i in out.indices) assertEquals("value $i", expected[i], out[i], 1e-4f)
        slicer.close()
    }
}
