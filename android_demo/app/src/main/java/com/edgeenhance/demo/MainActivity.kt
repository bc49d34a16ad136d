package com.edgeenhance.demo

import android.Manifest
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.graphics.Matrix
import android.net.Uri
import android.os.Bundle
import android.widget.Toast
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.content.ContextCompat
import androidx.lifecycle.lifecycleScope
import com.edgeenhance.demo.databinding.ActivityMainBinding
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.util.concurrent.Executors

/** Live camera preview enhanced by the bilateral model (grid form), before/after split, gallery enhance. */
class MainActivity : AppCompatActivity() {
    private lateinit var binding: ActivityMainBinding
    private lateinit var enhancer: Enhancer
    private val analysisExecutor = Executors.newSingleThreadExecutor()

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { ok ->
        if (ok) startCamera() else Toast.makeText(this, "Camera permission is needed for the live preview", Toast.LENGTH_LONG).show()
    }
    private val pickPhoto = registerForActivityResult(ActivityResultContracts.GetContent()) { uri -> uri?.let(::enhancePhoto) }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        binding = ActivityMainBinding.inflate(layoutInflater)
        setContentView(binding.root)
        enhancer = Enhancer(this)
        binding.gallery.setOnClickListener { pickPhoto.launch("image/*") }
        binding.benchmark.setOnClickListener { startActivity(Intent(this, BenchmarkActivity::class.java)) }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) startCamera()
        else askCamera.launch(Manifest.permission.CAMERA)
    }

    private fun startCamera() {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val preview = Preview.Builder().build().also { it.surfaceProvider = binding.preview.surfaceProvider }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor) { image ->
                val rotation = image.imageInfo.rotationDegrees
                val bmp = image.toBitmap()
                image.close()
                val upright = if (rotation == 0) bmp else
                    Bitmap.createBitmap(bmp, 0, 0, bmp.width, bmp.height, Matrix().apply { postRotate(rotation.toFloat()) }, true)
                val out = enhancer.enhance(upright)
                binding.split.show(out)
                runOnUiThread {
                    binding.stats.text = "%s  net %.1f ms  slice %.1f ms".format(
                        enhancer.delegateName, enhancer.lastNetworkMs, enhancer.lastSliceMs)
                }
            }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun enhancePhoto(uri: Uri) = lifecycleScope.launch {
        val result = withContext(Dispatchers.Default) {
            val src = ImageDecoder.decodeBitmap(ImageDecoder.createSource(contentResolver, uri)) { d, _, _ ->
                d.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
            }.copy(Bitmap.Config.ARGB_8888, false)
            enhancer.enhance(src)  // full resolution: the grid is sliced at the photo's own size
        }
        binding.split.show(result)
        binding.stats.text = "photo %dx%d  net %.1f ms  slice %.1f ms".format(
            result.width, result.height, enhancer.lastNetworkMs, enhancer.lastSliceMs)
    }

    override fun onDestroy() { super.onDestroy(); analysisExecutor.shutdown(); enhancer.close() }
}
