package com.edgeenhance.demo

import android.os.Bundle
import androidx.appcompat.app.AppCompatActivity
import androidx.lifecycle.lifecycleScope
import com.edgeenhance.demo.databinding.ActivityBenchmarkBinding
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Runs each bundled .tflite (every manifest under assets/) with GPU and CPU and shows the latency. */
class BenchmarkActivity : AppCompatActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val binding = ActivityBenchmarkBinding.inflate(layoutInflater)
        setContentView(binding.root)
        binding.results.text = "running..."
        lifecycleScope.launch {
            binding.results.text = withContext(Dispatchers.Default) { runAll() }
        }
    }

    private fun runAll(): String {
        val sb = StringBuilder("model                          delegate   avg ms  (20 runs after 3 warm-up)\n")
        val dirs = assets.list("")!!.filter { d -> assets.list(d)?.contains("manifest.json") == true }
        for (dir in dirs) {
            val manifest = ModelManifest(assets.open("$dir/manifest.json").bufferedReader().readText())
            for (entry in manifest.files.filter { it.target == "tflite" }) {
                for (useGpu in listOf(true, false)) {
                    if (useGpu && !CompatibilityList().isDelegateSupportedOnThisDevice) continue
                    val line = try {
                        "%.2f".format(time(Enhancer.loadAsset(this, "$dir/${entry.file}"), entry, useGpu))
                    } catch (e: Exception) { "failed: ${e.message}" }
                    sb.append("%-30s %-9s %s\n".format(entry.file.take(30), if (useGpu) "GPU" else "CPU", line))
                }
            }
        }
        return sb.toString()
    }

    private fun time(model: ByteBuffer, entry: ModelEntry, useGpu: Boolean): Double {
        val gpu = if (useGpu) GpuDelegate() else null
        val opts = Interpreter.Options().setNumThreads(4).also { o -> gpu?.let { o.addDelegate(it) } }
        Interpreter(model, opts).use { it ->
            val inBuf = ByteBuffer.allocateDirect(it.getInputTensor(0).numBytes()).order(ByteOrder.nativeOrder())
            val outBuf = ByteBuffer.allocateDirect(it.getOutputTensor(0).numBytes()).order(ByteOrder.nativeOrder())
            repeat(3) { _ -> inBuf.rewind(); outBuf.rewind(); it.run(inBuf, outBuf) }
            val t0 = System.nanoTime()
            repeat(20) { _ -> inBuf.rewind(); outBuf.rewind(); it.run(inBuf, outBuf) }
            gpu?.close()
            return (System.nanoTime() - t0) / 20 / 1e6
        }
    }
}
