package configs

import (
	"os"
	"path/filepath"
)

// SharedDir returns the folder holding the team's shared models and demo clips: $VIGIL_SHARED_DIR,
// else the nearest folder named "shared" beside the working directory or one of its parents
// (../shared from a checkout), else "".
func SharedDir() string {
	if d := os.Getenv("VIGIL_SHARED_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		if st, err := os.Stat(filepath.Join(parent, "shared")); err == nil && st.IsDir() {
			return filepath.Join(parent, "shared")
		}
		dir = parent
	}
}

// YOLOModel returns the detector model to load: models.yolo when set, else the first of the
// locations documented on Models.YOLO that exists, else the first candidate (so errors name it).
func (c Config) YOLOModel() string {
	if c.Models.YOLO != "" {
		return c.Models.YOLO
	}
	candidates := []string{
		filepath.Join(c.DataDir, "models", "yolov8n", "yolov8n.onnx"),
		filepath.Join(c.DataDir, "models", "yolov8n", "yolov8n_quantized.onnx"),
	}
	if s := SharedDir(); s != "" {
		candidates = append(candidates, filepath.Join(s, "models", "yolov8n", "yolov8n_quantized.onnx"))
	}
	return firstExisting(candidates)
}

// EmbedderModel returns the sentence-embedding model to load: models.embedder when set, else the
// first of the locations documented on Models.Embedder that exists, else the first candidate (so
// messages name it).
func (c Config) EmbedderModel() string {
	if c.Models.Embedder != "" {
		return c.Models.Embedder
	}
	candidates := []string{
		filepath.Join(c.DataDir, "models", "all-MiniLM-L6-v2", "onnx", "model.onnx"),
		filepath.Join(c.DataDir, "models", "all-MiniLM-L6-v2", "onnx", "model_quantized.onnx"),
	}
	if s := SharedDir(); s != "" {
		candidates = append(candidates, filepath.Join(s, "models", "all-MiniLM-L6-v2", "onnx", "model.onnx"))
	}
	return firstExisting(candidates)
}

// EmbedderTokenizer returns the embedder's tokenizer.json: the one in the folder above the model's
// onnx/ folder (the Hugging Face layout), else the shared folder's, else the first candidate.
func (c Config) EmbedderTokenizer() string {
	candidates := []string{filepath.Join(filepath.Dir(filepath.Dir(c.EmbedderModel())), "tokenizer.json")}
	if s := SharedDir(); s != "" {
		candidates = append(candidates, filepath.Join(s, "models", "all-MiniLM-L6-v2", "tokenizer.json"))
	}
	return firstExisting(candidates)
}

func firstExisting(paths []string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// FlorenceDir returns the Florence-2 folder to load: models.florence when set, else the first of
// DataDir/models/florence-2 and the shared folder's copy where FlorenceInstalled, else the first
// candidate (so messages name it).
func (c Config) FlorenceDir() string {
	if c.Models.Florence != "" {
		return c.Models.Florence
	}
	candidates := []string{filepath.Join(c.DataDir, "models", "florence-2")}
	if s := SharedDir(); s != "" {
		candidates = append(candidates, filepath.Join(s, "models", "florence-2"))
	}
	for _, dir := range candidates {
		if FlorenceInstalled(dir) {
			return dir
		}
	}
	return candidates[0]
}

// FlorenceInstalled says whether dir holds a Florence-2 decoder under onnx/; the shared folder
// holds only the tokenizer and configurations, and a fetch in progress only some parts.
func FlorenceInstalled(dir string) bool {
	found, _ := filepath.Glob(filepath.Join(dir, "onnx", "decoder_model_merged*.onnx"))
	return len(found) > 0
}
