"""Five standard PyTorch programs, written as PyTorch code with only the imports changed,
at small sizes: each must learn (its loss ends below a stated floor, far under where it
started). Our own versions of: an MLP classifier, pytorch/examples' MNIST CNN (on
synthetic digit-like images), its word-level language model at character level, a small
Transformer classifier, and its VAE."""

from __future__ import annotations

import io
import math

import numpy as np

import ember as torch
import ember.nn as nn
import ember.nn.functional as F
import ember.optim as optim
from ember.optim.lr_scheduler import StepLR
from ember.utils.data import DataLoader, TensorDataset

# ---- 1. an MLP classifier --------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, in_features, hidden, classes):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


def _spirals(n, classes, gen):
    t = torch.rand(n, generator=gen) * 3 * math.pi
    k = torch.randint(0, classes, (n,), generator=gen)
    angle = t + k.float() * (2 * math.pi / classes)
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1) / 10
    return x + 0.02 * torch.randn(n, 2, generator=gen), k


def test_mlp_learns_three_spirals():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x, y = _spirals(1200, 3, gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=gen)
    model = MLP(2, 64, 3)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for epoch in range(25):
        model.train()
        for data, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            optimizer.step()
            first = loss.item() if first is None else first
    model.eval()
    with torch.no_grad():
        logits = model(x)
        final = criterion(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    assert first > 1.0 and final < 0.35, (first, final)
    assert accuracy > 0.88


# ---- 2. pytorch/examples mnist: the CNN, Adadelta, StepLR ---------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def _digits(n, gen):
    """12x12 'digits': each class is a fixed stroke pattern, shifted by a pixel and noised."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen).item()))
    protos = np.zeros((10, 12, 12), np.float32)
    for k in range(10):
        r = np.random.default_rng(100 + k)
        for _ in range(3):  # three strokes per class
            r0, c0 = r.integers(1, 9, 2)
            if r.random() < 0.5:
                protos[k, r0, c0 : c0 + 4] = 1.0
            else:
                protos[k, r0 : r0 + 4, c0] = 1.0
    labels = rng.integers(0, 10, n)
    imgs = np.stack([np.roll(protos[k], rng.integers(-1, 2, 2), (0, 1)) for k in labels])
    imgs = imgs + 0.2 * rng.standard_normal(imgs.shape).astype(np.float32)
    return torch.from_numpy(imgs[:, None]), torch.from_numpy(labels)


def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()


def evaluate(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    return test_loss, correct / len(test_loader.dataset)


def test_mnist_example_cnn_learns_synthetic_digits():
    torch.manual_seed(1)
    device = torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    train_x, train_y = _digits(1000, gen)
    test_x, test_y = _digits(200, gen)
    train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=32, shuffle=True, generator=gen)
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=100)
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    before, _ = evaluate(model, device, test_loader)
    for epoch in range(1, 5):
        train(model, device, train_loader, optimizer, epoch)
        scheduler.step()
    test_loss, accuracy = evaluate(model, device, test_loader)
    assert before > 2.0 and test_loss < 0.3, (before, test_loss)
    assert accuracy > 0.9
    assert optimizer.param_groups[0]["lr"] == 1.0 * 0.7**4
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)  # "mnist_cnn.pt", to a file object
    buf.seek(0)
    again = Net()
    again.load_state_dict(torch.load(buf))
    assert evaluate(again, device, test_loader)[0] == test_loss


# ---- 3. pytorch/examples word_language_model, at character level --------------------------------


class RNNModel(nn.Module):
    """Container module with an encoder, a recurrent module, and a decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.rnn_type = rnn_type
        self.nhid = nhid
        self.nlayers = nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (
                weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid),
            )
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


TEXT = (
    "the quick brown fox jumps over the lazy dog. "
    "a stitch in time saves nine. "
    "all that glitters is not gold. "
    "the early bird catches the worm. "
) * 6


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    data = data.view(bsz, -1).t().contiguous()
    return data


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def test_word_language_model_learns_characters():
    torch.manual_seed(2)
    chars = sorted(set(TEXT))
    ids = torch.tensor([chars.index(c) for c in TEXT], dtype=torch.long)
    train_data = batchify(ids, 8)
    model = RNNModel("LSTM", len(chars), 16, 64, 1, dropout=0.0, tie_weights=False)
    criterion = nn.NLLLoss()
    lr, bptt, clip = 20.0, 20, 0.25  # the example's defaults
    losses = []
    for epoch in range(16):
        model.train()
        hidden = model.init_hidden(8)
        total = 0.0
        for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
            data, targets = get_batch(train_data, i, bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            total += loss.item()
        losses.append(total / (batch + 1))
    assert losses[0] > 3.0 and losses[-1] < 1.0, losses  # ln(26 symbols) = 3.3 nats/char at random
    assert math.exp(losses[-1]) < 2.7  # perplexity per character


# ---- 4. a small Transformer classifier -----------------------------------------------------------


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[: x.size(0)]
        return self.dropout(x)


class TransformerClassifier(nn.Module):
    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, nclass, dropout=0.1):
        super().__init__()
        self.embedding = nn.Embedding(ntoken, d_model)
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        encoder_layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers)
        self.d_model = d_model
        self.classifier = nn.Linear(d_model, nclass)

    def forward(self, src, src_key_padding_mask=None):
        src = self.embedding(src) * math.sqrt(self.d_model)
        src = self.pos_encoder(src)
        output = self.transformer_encoder(src, src_key_padding_mask=src_key_padding_mask)
        return self.classifier(output.mean(dim=0))


def _order_task(n, length, gen):
    """Label 1 when token 1 comes before token 2 in the sequence (an order, not a count)."""
    seqs = torch.randint(3, 10, (n, length), generator=gen)
    a = torch.randint(0, length, (n,), generator=gen)
    b = (a + torch.randint(1, length, (n,), generator=gen)) % length
    rows = torch.arange(n)
    seqs[rows, a] = 1
    seqs[rows, b] = 2
    return seqs, (a < b).long()


def test_transformer_classifier_learns_token_order():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    x, y = _order_task(512, 8, gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=gen)
    model = TransformerClassifier(10, 24, 4, 48, 2, 2, dropout=0.0)
    optimizer = optim.AdamW(model.parameters(), lr=2e-3)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, epochs=15, steps_per_epoch=len(loader))
    losses = []
    for epoch in range(15):
        model.train()
        total = 0.0
        for src, label in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(src.t()), label)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(label)
        losses.append(total / len(loader.dataset))
    model.eval()
    with torch.no_grad():
        acc = (model(x.t()).argmax(1) == y).float().mean().item()
    assert losses[0] > 0.6 and losses[-1] < 0.2, losses  # ln 2 = 0.69 at chance
    assert acc > 0.95


# ---- 5. pytorch/examples vae -------------------------------------------------------------------


class VAE(nn.Module):
    def __init__(self, d=64, h=128, z=8):
        super().__init__()
        self.d = d
        self.fc1 = nn.Linear(d, h)
        self.fc21 = nn.Linear(h, z)
        self.fc22 = nn.Linear(h, z)
        self.fc3 = nn.Linear(z, h)
        self.fc4 = nn.Linear(h, d)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, self.d))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar, d=64):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, d), reduction="sum")
    # see Appendix B from VAE paper: Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def _blobs(n, gen):
    """8x8 binary images: a filled square of random size at a random place."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen).item()))
    imgs = np.zeros((n, 8, 8), np.float32)
    for i in range(n):
        s = rng.integers(2, 5)
        r, c = rng.integers(0, 9 - s, 2)
        imgs[i, r : r + s, c : c + s] = 1.0
    return torch.from_numpy(imgs.reshape(n, 1, 8, 8))


def test_vae_example_learns_to_reconstruct():
    torch.manual_seed(4)
    gen = torch.Generator().manual_seed(4)
    data = _blobs(1024, gen)
    train_loader = DataLoader(TensorDataset(data), batch_size=64, shuffle=True, generator=gen)
    model = VAE()
    optimizer = optim.Adam(model.parameters(), lr=5e-3)
    per_image = []
    for epoch in range(15):
        model.train()
        train_loss = 0
        for batch_idx, (x,) in enumerate(train_loader):
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(x)
            loss = loss_function(recon_batch, x, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        per_image.append(train_loss / len(train_loader.dataset))
    # 64 pixels: a blind model pays 64 * ln 2 = 44 nats; the start is about that
    assert per_image[0] > 25 and per_image[-1] < 13, per_image
    model.eval()
    with torch.no_grad():
        sample = model.decode(torch.randn(16, 8))
    assert sample.shape == (16, 64) and float(sample.min()) >= 0 and float(sample.max()) <= 1
