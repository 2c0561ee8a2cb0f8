// Package models knows the model files vigil runs (where to download them, their sizes and
// checksums) and installs them into a models folder: resumable downloads whose content is
// verified before the file takes its final name, so a file under its final name is always whole.
package models

import (
	"fmt"
	"slices"
	"strings"
)

// Where the files come from. The GitHub copies are pinned to a commit, so they never change; the
// Hugging Face repositories are the models' homes but are followed at main, so the checksums,
// not the URLs, decide whether a file is the one the catalog means.
const (
	yoloHome       = "https://raw.githubusercontent.com/H-shayea/Yolov8/4d2190f7c836626998fcb0aa4680f5ae48fa2e76/"
	miniLMHome     = "https://huggingface.co/Xenova/all-MiniLM-L6-v2/resolve/main/"
	miniLMPinned   = "https://raw.githubusercontent.com/Xyntopia/all-MiniLM-L6-v2/48a5a372879ed2ed147ab84836e345977276d9b2/"
	florenceHome   = "https://huggingface.co/onnx-community/Florence-2-base/resolve/main/"
	florencePinned = "https://raw.githubusercontent.com/ricobiz/CHIMERA-2/6732e1ab9ba06cf2a9a7c4fb8031103dfaa6108c/backend/onnx_models/florence-2-base/"
)

// File is one file of a model.
type File struct {
	// Path is where the file goes under the models folder, slash-separated: the model's folder,
	// then the file's path in the model's repository ("florence-2/onnx/encoder_model_q4.onnx").
	Path string
	// Size is the length in bytes; 0 when the catalog does not know it.
	Size int64
	// SHA256 is the hex sha256 of the content; "" when not known.
	SHA256 string
	// GitBlob is the hex git object id of the content, sha1("blob <size>\x00" + content); it is
	// checked when SHA256 is not known.
	GitBlob string
	// URLs are the places the file can be downloaded from, tried in order.
	URLs []string
}

// Method is how a file's content is checked.
type Method string

// The methods, best first.
const (
	SHA256     Method = "sha256"
	GitBlob    Method = "git blob"
	Unverified Method = "unverified" // the catalog knows no checksum for the file
)

// Method returns how f's content is checked.
func (f File) Method() Method {
	switch {
	case f.SHA256 != "":
		return SHA256
	case f.GitBlob != "":
		return GitBlob
	}
	return Unverified
}

// Precision is one set of a model's weight files.
type Precision struct {
	Name  string
	Files []File
}

// Model is a model vigil runs, as the catalog knows it.
type Model struct {
	// Name is how the command line names it: yolo, embedder or florence.
	Name string
	// Title is the model's own name.
	Title string
	// Dir is the model's folder under the models folder, and under a mirror.
	Dir string
	// Common are the files every precision needs: configuration and tokenizer.
	Common []File
	// Precisions are the weight sets the model can be fetched in; the first is the default.
	Precisions []Precision
}

// Files returns the files of m in the named precision, or in the default one when name is "".
func (m Model) Files(name string) ([]File, error) {
	if name == "" {
		name = m.Precisions[0].Name
	}
	for _, p := range m.Precisions {
		if p.Name == name {
			return append(slices.Clone(m.Common), p.Files...), nil
		}
	}
	return nil, fmt.Errorf("%s has no precision %q: choose %s", m.Title, name, strings.Join(m.PrecisionNames(), ", "))
}

// PrecisionNames returns the names of m's precisions, the default first.
func (m Model) PrecisionNames() []string {
	names := make([]string, len(m.Precisions))
	for i, p := range m.Precisions {
		names[i] = p.Name
	}
	return names
}

// Known returns every file the catalog knows of m, whatever the precision, each once.
func (m Model) Known() []File {
	files := slices.Clone(m.Common)
	for _, p := range m.Precisions {
		for _, f := range p.Files {
			if !slices.ContainsFunc(files, func(g File) bool { return g.Path == f.Path }) {
				files = append(files, f)
			}
		}
	}
	return files
}

// Lookup returns the catalog's model of that name.
func Lookup(name string) (Model, error) {
	var names []string
	for _, m := range Catalog() {
		if m.Name == name {
			return m, nil
		}
		names = append(names, m.Name)
	}
	return Model{}, fmt.Errorf("no model %q: choose %s", name, strings.Join(names, ", "))
}

// Catalog returns the models vigil runs: the YOLOv8n detector, the all-MiniLM-L6-v2 sentence
// embedder and the Florence-2-base captioner. Sizes and checksums are those recorded in the team's
// models MANIFEST.md.
func Catalog() []Model {
	yolo := source("yolov8n", yoloHome)
	miniLM := source("all-MiniLM-L6-v2", miniLMHome, miniLMPinned)
	// The pinned GitHub copy holds the tokenizer and config files but only pointers to the
	// weights, which Git LFS keeps elsewhere.
	miniLMWeights := source("all-MiniLM-L6-v2", miniLMHome)
	florence := source("florence-2", florenceHome, florencePinned)
	// The GitHub copy holds only the q4 and q4f16 parts, so the other precisions come from Hugging
	// Face alone and have no checksum.
	florenceHF := source("florence-2", florenceHome)
	florenceUnpinned := func(suffix string) []File {
		var files []File
		for _, part := range []string{"vision_encoder", "embed_tokens", "encoder_model", "decoder_model_merged"} {
			files = append(files, florenceHF("onnx/"+part+suffix+".onnx", 0, "", ""))
		}
		return files
	}
	// onnx-community publishes no embed_tokens_q4.onnx: the q4 set takes the q4f16 one, and the
	// caption runner mixes precisions per part.
	embedTokensQ4F16 := florence("onnx/embed_tokens_q4f16.onnx", 0, "", "dee5e5616a02e0545eab8c93335a69a22fcdf077")

	return []Model{{
		Name:  "yolo",
		Title: "YOLOv8n",
		Dir:   "yolov8n",
		Precisions: []Precision{
			{"fp32", []File{yolo("yolov8n.onnx", 0, "", "0eb5407dbdb874ecad384d722f7caf23e5c72d32")}},
			{"int8", []File{yolo("yolov8n_quantized.onnx", 3504057, "514d216462cb113da3cf2a29d27fe1a21ba0cba4052520da67e200277d90b3b7", "")}},
		},
	}, {
		Name:  "embedder",
		Title: "all-MiniLM-L6-v2",
		Dir:   "all-MiniLM-L6-v2",
		Common: []File{
			miniLM("tokenizer.json", 711661, "da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0", ""),
			miniLM("config.json", 650, "7135149f7cffa1a573466c6e4d8423ed73b62fd2332c575bf738a0d033f70df7", ""),
			miniLM("tokenizer_config.json", 366, "9261e7d79b44c8195c1cada2b453e55b00aeb81e907a6664974b4d7776172ab3", ""),
			miniLM("special_tokens_map.json", 125, "b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3", ""),
			miniLM("vocab.txt", 231508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", ""),
		},
		Precisions: []Precision{
			{"fp32", []File{miniLMWeights("onnx/model.onnx", 90387606, "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e", "")}},
			{"int8", []File{miniLMWeights("onnx/model_quantized.onnx", 22972370, "afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1", "")}},
		},
	}, {
		Name:  "florence",
		Title: "Florence-2-base",
		Dir:   "florence-2",
		Common: []File{
			florence("config.json", 5447, "74efbe2299e13cfcc9e083861eae4a943d76f784ddd595d85e779d189cf0a574", ""),
			florence("generation_config.json", 297, "25dc666f44506e0a63f5de2d191e5809b251527b282ff4951fad9840556407b3", ""),
			florence("preprocessor_config.json", 2673, "c892857e34a7082284983a7717717d39c9bf7e574f1f41d80d4c918c97502efa", ""),
			florence("processor_config.json", 130, "6eb1a2e487fa8b7521691a3382b5afd92a78e8ea34b385f8824fa07563e92245", ""),
			florence("tokenizer.json", 2297961, "d69dcdb2323e124ac4f800cb9863ddccea0d7bb11e16125e8df3bd60f2f8aeac", ""),
			florence("tokenizer_config.json", 197658, "d8e64607233cb53b619fb46664f6cad08176c26e0e8735b2d30d888364f19600", ""),
			florence("special_tokens_map.json", 146627, "72ff172dc769bc1551b1b4211628ce3271643bc60379e4da45d85a9be9332c39", ""),
			florence("vocab.json", 798293, "ed19656ea1707df69134c4af35c8ceda2cc9860bf2c3495026153a133670ab5e", ""),
			florence("merges.txt", 456318, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5", ""),
			florence("added_tokens.json", 22410, "ba67457c577895525996e7a42d7da60a05856506ea4fd25ff9a023a64662f74b", ""),
		},
		Precisions: []Precision{
			{"q4", []File{
				florence("onnx/vision_encoder_q4.onnx", 0, "", "15e540ab1e99c6d89380f2374b48f5af6c7a5e42"),
				embedTokensQ4F16,
				florence("onnx/encoder_model_q4.onnx", 0, "", "ccf06d97649db80c31cb0a80451472cf133de7ef"),
				florence("onnx/decoder_model_merged_q4.onnx", 0, "", "8247768c0a89c7fc5187091aa9d92ba50cdefa55"),
			}},
			{"q4f16", []File{
				florence("onnx/vision_encoder_q4f16.onnx", 0, "", "821a7a7c8155b849be83edcd77d619f379dff667"),
				embedTokensQ4F16,
				florence("onnx/encoder_model_q4f16.onnx", 0, "", "64a2bba9b2a3a5a9d6b0ff3f0d5bc8058b63cbc4"),
				florence("onnx/decoder_model_merged_q4f16.onnx", 0, "", "695940c4f441d4b9396bc7abcaf9543384240dc4"),
			}},
			{"fp16", florenceUnpinned("_fp16")},
			{"quantized", florenceUnpinned("_quantized")},
			{"fp32", florenceUnpinned("")},
		},
	}}
}

// source returns a constructor of the files of the model in folder dir that the given homes
// serve, each at home + the file's path in the model.
func source(dir string, homes ...string) func(path string, size int64, sha256, gitBlob string) File {
	return func(path string, size int64, sha256, gitBlob string) File {
		urls := make([]string, len(homes))
		for i, h := range homes {
			urls[i] = h + path
		}
		return File{Path: dir + "/" + path, Size: size, SHA256: sha256, GitBlob: gitBlob, URLs: urls}
	}
}
